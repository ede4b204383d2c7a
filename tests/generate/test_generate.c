// SPDX-License-Identifier: MIT
//
// test_generate.c -- stubs from a .proto listed alone that imports
// well-known types (their code comes from rawrpc::wkt), and from a.proto
// importing b/b.proto from another folder (its outputs keep the path).

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <rawrpc/testing.h>

#include "a.rr.h"
#include "b/b.pb-c.h"
#include "clock.rr.h"
#include "google/protobuf/empty.pb-c.h"

static void
now(rr_call *call, const Google__Protobuf__Empty *req, void *arg)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

    (void) req;
    (void) arg;
    ts.seconds = 1700000000;
    ts.nanos = 42;
    rr_gen__clock__clock__now__reply(call, &ts);
}

static void
at(rr_call *call, const Gen__Clock__Later *req, void *arg)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

    (void) arg;
    ts.seconds = 1700000000 + (req->after != NULL ? req->after->seconds : 0);
    ts.nanos = req->label != NULL && req->label->value[0] != '\0' ? 1 : 0;
    rr_gen__clock__clock__at__reply(call, &ts);
}

static void
test_wkt_alone(void **state)
{
    (void) state;
    rr_testkit *kit;
    const rr_gen__clock__clock__handlers h = {.now = now, .at = at};
    Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
    Google__Protobuf__Timestamp *ts = NULL;
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    Google__Protobuf__StringValue label = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
    Gen__Clock__Later later = GEN__CLOCK__LATER__INIT;
    char text[] = "soon";

    assert_int_equal(rr_testkit_new(&kit, NULL, NULL), RR_OK);
    assert_int_equal(
        rr_gen__clock__clock__register(rr_testkit_server(kit), &h, NULL),
        RR_OK);
    assert_int_equal(rr_gen__clock__clock__now__sync(rr_testkit_channel(kit),
                                                     &empty, NULL, &ts, NULL),
                     RR_STATUS_OK);
    assert_int_equal(ts->seconds, 1700000000);
    assert_int_equal(ts->nanos, 42);
    protobuf_c_message_free_unpacked(&ts->base, NULL);

    d.seconds = 60;
    label.value = text;
    later.after = &d;
    later.label = &label;
    assert_int_equal(rr_gen__clock__clock__at__sync(rr_testkit_channel(kit),
                                                    &later, NULL, &ts, NULL),
                     RR_STATUS_OK);
    assert_int_equal(ts->seconds, 1700000060);
    assert_int_equal(ts->nanos, 1);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    assert_int_equal(rr_testkit_free(kit), RR_OK);
}

static void
open_box(rr_call *call, const Google__Protobuf__Empty *req, void *arg)
{
    Gen__A__Box box = GEN__A__BOX__INIT;
    Gen__B__Item item = GEN__B__ITEM__INIT;
    char name[] = "from b/b.proto";

    (void) req;
    (void) arg;
    item.name = name;
    box.item = &item;
    rr_gen__a__boxes__open__reply(call, &box);
}

static void
test_import_dirs(void **state)
{
    (void) state;
    rr_testkit *kit;
    const rr_gen__a__boxes__handlers h = {.open = open_box};
    Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
    Gen__A__Box *box = NULL;

    assert_int_equal(rr_testkit_new(&kit, NULL, NULL), RR_OK);
    assert_int_equal(
        rr_gen__a__boxes__register(rr_testkit_server(kit), &h, NULL), RR_OK);
    assert_int_equal(rr_gen__a__boxes__open__sync(rr_testkit_channel(kit),
                                                  &empty, NULL, &box, NULL),
                     RR_STATUS_OK);
    assert_non_null(box->item);
    assert_string_equal(box->item->name, "from b/b.proto");
    protobuf_c_message_free_unpacked(&box->base, NULL);
    assert_int_equal(rr_testkit_free(kit), RR_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wkt_alone),
        cmocka_unit_test(test_import_dirs),
    };
    return cmocka_run_group_tests_name("generate", tests, NULL, NULL);
}
