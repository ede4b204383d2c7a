// SPDX-License-Identifier: MIT
//
// test_hello.c -- a user's test of their own service, with the installed
// rawrpc's generator, test kit and rawrpc_add_test().

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include <rawrpc/testing.h>

#include "hello.rr.h"

static void
greet(rr_call *call, const Hello__Name *req, void *arg)
{
    Hello__Greeting out = HELLO__GREETING__INIT;
    char text[64];

    (void) arg;
    snprintf(text, sizeof(text), "hi %s", req->name);
    out.text = text;
    rr_hello__greeter__greet__reply(call, &out);
}

static void
test_hello_greets(void **state)
{
    (void) state;
    rr_testkit *kit;
    const rr_hello__greeter__handlers h = {.greet = greet};
    Hello__Name req = HELLO__NAME__INIT;
    Hello__Greeting *reply = NULL;
    char name[] = "you";

    assert_int_equal(rr_testkit_new(&kit, NULL, NULL), RR_OK);
    assert_int_equal(
        rr_hello__greeter__register(rr_testkit_server(kit), &h, NULL), RR_OK);
    req.name = name;
    assert_int_equal(rr_hello__greeter__greet__sync(rr_testkit_channel(kit),
                                                    &req, NULL, &reply, NULL),
                     RR_STATUS_OK);
    assert_string_equal(reply->text, "hi you");
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    assert_int_equal(rr_testkit_free(kit), RR_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hello_greets)};
    return cmocka_run_group_tests_name("hello", tests, NULL, NULL);
}
