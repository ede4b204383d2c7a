// SPDX-License-Identifier: MIT
//
// test_mixed.c -- the unary methods of a service that also has streaming
// ones are served and called; the skipped ones are not served (built
// only with -DRAWRPC_TEST_MIXED_STREAMING=ON, after the codegen change).

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <rawrpc/testing.h>

#include "mixed.rr.h"

static void
get(rr_call *call, const Mixed__Ask *req, void *arg)
{
    Mixed__Answer out = MIXED__ANSWER__INIT;

    (void) arg;
    out.a = req->q;
    rr_mixed__desk__get__reply(call, &out);
}

static void
test_unary_of_mixed(void **state)
{
    (void) state;
    rr_testkit *kit;
    const rr_mixed__desk__handlers h = {.get = get}; // .put left NULL
    Mixed__Ask req = MIXED__ASK__INIT;
    Mixed__Answer *reply = NULL;
    char q[] = "q";
    char *msg = NULL;

    assert_int_equal(rr_testkit_new(&kit, NULL, NULL), RR_OK);
    assert_int_equal(rr_mixed__desk__register(rr_testkit_server(kit), &h, NULL),
                     RR_OK);
    req.q = q;
    assert_int_equal(rr_mixed__desk__get__sync(rr_testkit_channel(kit), &req,
                                               NULL, &reply, NULL),
                     RR_STATUS_OK);
    assert_string_equal(reply->a, "q");
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    assert_int_equal(rr_mixed__desk__put__sync(rr_testkit_channel(kit), &req,
                                               NULL, &reply, &msg),
                     RR_STATUS_UNIMPLEMENTED);
    free(msg);
    assert_int_equal(rr_testkit_free(kit), RR_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_unary_of_mixed)};
    return cmocka_run_group_tests_name("mixed", tests, NULL, NULL);
}
