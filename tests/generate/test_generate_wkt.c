// SPDX-License-Identifier: MIT
//
// test_generate_wkt.c -- two generated static libraries (gen_one,
// gen_two), both using google.protobuf.Timestamp, in one program: it
// links without duplicate symbols, both see the one descriptor from
// rawrpc::wkt, and both services answer.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <rawrpc/testing.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "one.rr.h"
#include "two.rr.h"

static void
stamp_one(rr_call *call, const Gen__One__Stamp *req, void *arg)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

    (void) arg;
    ts.seconds = req->at != NULL ? req->at->seconds + 1 : 0;
    rr_gen__one__stamper__mark__reply(call, &ts);
}

static void
stamp_two(rr_call *call, const Gen__Two__Stamp *req, void *arg)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

    (void) arg;
    ts.seconds = req->at != NULL ? req->at->seconds + 2 : 0;
    rr_gen__two__stamper__mark__reply(call, &ts);
}

static void
test_one_descriptor(void **state)
{
    (void) state;
    // Each message's field "at" points at the same Timestamp descriptor.
    assert_ptr_equal(gen__one__stamp__descriptor.fields[0].descriptor,
                     &google__protobuf__timestamp__descriptor);
    assert_ptr_equal(gen__two__stamp__descriptor.fields[0].descriptor,
                     &google__protobuf__timestamp__descriptor);
}

static void
test_both_serve(void **state)
{
    (void) state;
    rr_testkit *kit;
    const rr_gen__one__stamper__handlers h1 = {.mark = stamp_one};
    const rr_gen__two__stamper__handlers h2 = {.mark = stamp_two};
    Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Gen__One__Stamp r1 = GEN__ONE__STAMP__INIT;
    Gen__Two__Stamp r2 = GEN__TWO__STAMP__INIT;
    Google__Protobuf__Timestamp *ts = NULL;

    assert_int_equal(rr_testkit_new(&kit, NULL, NULL), RR_OK);
    assert_int_equal(
        rr_gen__one__stamper__register(rr_testkit_server(kit), &h1, NULL),
        RR_OK);
    assert_int_equal(
        rr_gen__two__stamper__register(rr_testkit_server(kit), &h2, NULL),
        RR_OK);
    at.seconds = 100;
    r1.at = &at;
    r2.at = &at;
    assert_int_equal(rr_gen__one__stamper__mark__sync(rr_testkit_channel(kit),
                                                      &r1, NULL, &ts, NULL),
                     RR_STATUS_OK);
    assert_int_equal(ts->seconds, 101);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    assert_int_equal(rr_gen__two__stamper__mark__sync(rr_testkit_channel(kit),
                                                      &r2, NULL, &ts, NULL),
                     RR_STATUS_OK);
    assert_int_equal(ts->seconds, 102);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    assert_int_equal(rr_testkit_free(kit), RR_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_descriptor),
        cmocka_unit_test(test_both_serve),
    };
    return cmocka_run_group_tests_name("generate_wkt", tests, NULL, NULL);
}
