// SPDX-License-Identifier: MIT
//
// test_greeter.c -- the service through the test kit: a server with
// greeter_register, a channel to it, the generated blocking calls.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <rawrpc/testing.h>

#include "greeter.h"

static int
setup(void **state)
{
    rr_testkit *kit;

    if (rr_testkit_new(&kit, NULL, NULL) != RR_OK ||
        greeter_register(rr_testkit_server(kit)) != RR_OK)
        return -1;
    *state = kit;
    return 0;
}

static int
teardown(void **state)
{
    return rr_testkit_free(*state) == RR_OK ? 0 : -1;
}

static void
test_hello(void **state)
{
    rr_testkit *kit = *state;
    Greeter__V1__HelloRequest req = GREETER__V1__HELLO_REQUEST__INIT;
    Greeter__V1__HelloReply *reply = NULL;
    char name[] = "template";

    req.name = name;
    assert_int_equal(rr_greeter__v1__greeter__hello__sync(
                         rr_testkit_channel(kit), &req, NULL, &reply, NULL),
                     RR_STATUS_OK);
    assert_string_equal(reply->text, "hello, template");
    protobuf_c_message_free_unpacked(&reply->base, NULL);
}

static void
test_hello_needs_a_name(void **state)
{
    rr_testkit *kit = *state;
    Greeter__V1__HelloRequest req = GREETER__V1__HELLO_REQUEST__INIT;
    Greeter__V1__HelloReply *reply = NULL;
    char *msg = NULL;

    assert_int_equal(rr_greeter__v1__greeter__hello__sync(
                         rr_testkit_channel(kit), &req, NULL, &reply, &msg),
                     RR_STATUS_INVALID_ARGUMENT);
    assert_null(reply);
    assert_string_equal(msg, "name is empty");
    free(msg);
}

static void
test_now(void **state)
{
    rr_testkit *kit = *state;
    Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
    Google__Protobuf__Timestamp *ts = NULL;

    assert_int_equal(rr_greeter__v1__greeter__now__sync(
                         rr_testkit_channel(kit), &empty, NULL, &ts, NULL),
                     RR_STATUS_OK);
    assert_true(ts->seconds > 1600000000);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_hello_needs_a_name),
        cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests_name("greeter", tests, setup, teardown);
}
