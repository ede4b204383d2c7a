// SPDX-License-Identifier: MIT
//
// test_clock.c -- a user's service on well-known types (Empty in,
// Timestamp out; Duration, StringValue and Struct in a message), server
// and client in one program through the installed test kit.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <rawrpc/testing.h>

#include "clock.rr.h"

static void
now(rr_call *call, const Google__Protobuf__Empty *req, void *arg)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    struct timespec t;

    (void) req;
    (void) arg;
    clock_gettime(CLOCK_REALTIME, &t);
    ts.seconds = t.tv_sec;
    ts.nanos = (int32_t) t.tv_nsec;
    rr_clock__clock__now__reply(call, &ts);
}

static void
set(rr_call *call, const Clock__Alarm *req, void *arg)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

    (void) arg;
    if (req->in == NULL || req->label == NULL || req->tags == NULL ||
        req->tags->n_fields != 1) {
        rr_call_fail(call, RR_STATUS_INVALID_ARGUMENT, "in, label, one tag");
        return;
    }
    ts.seconds = 1000 + req->in->seconds;
    ts.nanos = (int32_t) strlen(req->label->value);
    rr_clock__clock__set__reply(call, &ts);
}

static const rr_clock__clock__handlers handlers = {.now = now, .set = set};

static void
test_now(void **state)
{
    (void) state;
    rr_testkit *kit;
    Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
    Google__Protobuf__Timestamp *ts = NULL;

    assert_int_equal(rr_testkit_new(&kit, NULL, NULL), RR_OK);
    assert_int_equal(
        rr_clock__clock__register(rr_testkit_server(kit), &handlers, NULL),
        RR_OK);
    assert_int_equal(rr_clock__clock__now__sync(rr_testkit_channel(kit), &empty,
                                                NULL, &ts, NULL),
                     RR_STATUS_OK);
    assert_true(ts->seconds > 1600000000); // after September 2020
    assert_in_range(ts->nanos, 0, 999999999);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    assert_int_equal(rr_testkit_free(kit), RR_OK);
}

static void
test_set(void **state)
{
    (void) state;
    rr_testkit *kit;
    Google__Protobuf__Duration in = GOOGLE__PROTOBUF__DURATION__INIT;
    Google__Protobuf__StringValue label = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
    Google__Protobuf__Struct tags = GOOGLE__PROTOBUF__STRUCT__INIT;
    Google__Protobuf__Struct__FieldsEntry entry =
        GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    Google__Protobuf__Struct__FieldsEntry *entries[] = {&entry};
    Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
    Clock__Alarm alarm = CLOCK__ALARM__INIT;
    Google__Protobuf__Timestamp *ts = NULL;
    char text[] = "tea", key[] = "room";

    in.seconds = 180;
    label.value = text;
    v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    v.number_value = 12;
    entry.key = key;
    entry.value = &v;
    tags.n_fields = 1;
    tags.fields = entries;
    alarm.in = &in;
    alarm.label = &label;
    alarm.tags = &tags;
    assert_int_equal(rr_testkit_new(&kit, NULL, NULL), RR_OK);
    assert_int_equal(
        rr_clock__clock__register(rr_testkit_server(kit), &handlers, NULL),
        RR_OK);
    assert_int_equal(rr_clock__clock__set__sync(rr_testkit_channel(kit), &alarm,
                                                NULL, &ts, NULL),
                     RR_STATUS_OK);
    assert_int_equal(ts->seconds, 1180);
    assert_int_equal(ts->nanos, 3);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    assert_int_equal(rr_testkit_free(kit), RR_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_now),
        cmocka_unit_test(test_set),
    };
    return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
