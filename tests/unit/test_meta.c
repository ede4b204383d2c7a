// SPDX-License-Identifier: MIT
//
// test_meta.c -- REQUEST and RESPONSE frames: metadata and payload, the
// spec's vectors byte for byte, limits, and metadata that does not unpack.

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec/buf.h"
#include "codec/frame.h"
#include "codec/meta.h"
#include "rawrpc/rawrpc.h"
#include "testmsg.pb-c.h"
#include "vectors.h"

#define MAX_BODY (4u * 1024 * 1024)

static void
expect_bytes(const rr_buf *b, const uint8_t *want, size_t len)
{
    assert_int_equal(rr__buf_size(b), len);
    assert_memory_equal(rr__buf_data(b), want, len);
}

static void
test_meta_request_vector(void **state)
{
    (void) state;
    rr_buf b;
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    Rrtest__Echo echo = RRTEST__ECHO__INIT;

    char method[] = "/demo.Echo/Say", hi[] = "hi";

    meta.method = method;
    meta.timeout_us = 250000;
    echo.text = hi;
    rr__buf_init(&b, 1024);
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, 1, &meta.base, &echo.base, MAX_BODY),
        RR_OK);
    expect_bytes(&b, vec_request, sizeof(vec_request));
    rr__buf_fini(&b);
}

static void
test_meta_request_with_user_metadata_vector(void **state)
{
    (void) state;
    rr_buf b;
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    Rawrpc__V1__MetadataEntry e = RAWRPC__V1__METADATA_ENTRY__INIT;
    Rawrpc__V1__MetadataEntry *entries[] = {&e};

    char key[] = "trace-id", method[] = "/demo.Echo/Say";
    uint8_t value[] = {'a', 'b', 'c'};

    e.key = key;
    e.value.data = value;
    e.value.len = 3;
    meta.method = method;
    meta.n_metadata = 1;
    meta.metadata = entries;
    rr__buf_init(&b, 1024);
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, 2, &meta.base, NULL, MAX_BODY),
        RR_OK);
    expect_bytes(&b, vec_request_md, sizeof(vec_request_md));
    rr__buf_fini(&b);
}

static void
test_meta_response_vectors(void **state)
{
    (void) state;
    rr_buf b;
    Rawrpc__V1__ResponseMeta ok = RAWRPC__V1__RESPONSE_META__INIT;
    Rawrpc__V1__ResponseMeta err = RAWRPC__V1__RESPONSE_META__INIT;
    Rrtest__Echo echo = RRTEST__ECHO__INIT;

    char hi[] = "hi", no_such_key[] = "no such key";

    echo.text = hi;
    rr__buf_init(&b, 1024);
    // An OK response with no metadata costs zero metadata bytes, whether
    // the metadata message is given or left out.
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_RESPONSE, 1, &ok.base, &echo.base, MAX_BODY),
        RR_OK);
    expect_bytes(&b, vec_response_ok, sizeof(vec_response_ok));
    rr__buf_consume(&b, rr__buf_size(&b));
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_RESPONSE, 1, NULL, &echo.base, MAX_BODY),
        RR_OK);
    expect_bytes(&b, vec_response_ok, sizeof(vec_response_ok));
    rr__buf_consume(&b, rr__buf_size(&b));

    err.status = RR_STATUS_NOT_FOUND;
    err.message = no_such_key;
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_RESPONSE, 2, &err.base, NULL, MAX_BODY),
        RR_OK);
    expect_bytes(&b, vec_response_err, sizeof(vec_response_err));
    rr__buf_fini(&b);
}

static void
test_meta_decode_request_and_payload_in_place(void **state)
{
    (void) state;
    rr_frame f;
    ProtobufCMessage *m;

    assert_int_equal(
        rr__frame_decode(vec_request_md, sizeof(vec_request_md), MAX_BODY, &f),
        sizeof(vec_request_md));
    assert_int_equal(
        rr__meta_unpack(&rawrpc__v1__request_meta__descriptor, &f, NULL, &m),
        RR_OK);
    Rawrpc__V1__RequestMeta *meta = (Rawrpc__V1__RequestMeta *) m;
    assert_string_equal(meta->method, "/demo.Echo/Say");
    assert_int_equal(meta->timeout_us, 0);
    assert_int_equal(meta->n_metadata, 1);
    assert_string_equal(meta->metadata[0]->key, "trace-id");
    assert_int_equal(meta->metadata[0]->value.len, 3);
    assert_memory_equal(meta->metadata[0]->value.data, "abc", 3);
    assert_int_equal(rr__frame_payload_len(&f), 0);
    protobuf_c_message_free_unpacked(m, NULL);

    // The payload is unpacked straight from the receive buffer.
    assert_int_equal(
        rr__frame_decode(vec_request, sizeof(vec_request), MAX_BODY, &f),
        sizeof(vec_request));
    assert_ptr_equal(rr__frame_payload(&f), vec_request + 12 + 20);
    Rrtest__Echo *echo = rrtest__echo__unpack(NULL, rr__frame_payload_len(&f),
                                              rr__frame_payload(&f));
    assert_non_null(echo);
    assert_string_equal(echo->text, "hi");
    rrtest__echo__free_unpacked(echo, NULL);
}

static void
test_meta_decode_response(void **state)
{
    (void) state;
    rr_frame f;
    ProtobufCMessage *m;

    assert_true(rr__frame_decode(vec_response_err, sizeof(vec_response_err),
                                 MAX_BODY, &f) > 0);
    assert_int_equal(
        rr__meta_unpack(&rawrpc__v1__response_meta__descriptor, &f, NULL, &m),
        RR_OK);
    Rawrpc__V1__ResponseMeta *meta = (Rawrpc__V1__ResponseMeta *) m;
    assert_int_equal(meta->status, RR_STATUS_NOT_FOUND);
    assert_string_equal(meta->message, "no such key");
    protobuf_c_message_free_unpacked(m, NULL);

    // Zero metadata bytes unpack to the defaults: status OK.
    assert_true(rr__frame_decode(vec_response_ok, sizeof(vec_response_ok),
                                 MAX_BODY, &f) > 0);
    assert_int_equal(
        rr__meta_unpack(&rawrpc__v1__response_meta__descriptor, &f, NULL, &m),
        RR_OK);
    assert_int_equal(((Rawrpc__V1__ResponseMeta *) m)->status, RR_STATUS_OK);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void
test_meta_truncated_and_garbled(void **state)
{
    (void) state;
    uint8_t buf[sizeof(vec_request)];
    rr_frame f;
    ProtobufCMessage *m = NULL;

    // meta_len cut to 10: the method string's length says 14 bytes, so
    // the metadata is truncated.  The frame itself is well-formed.
    memcpy(buf, vec_request, sizeof(buf));
    buf[7] = 10;
    assert_int_equal(rr__frame_decode(buf, sizeof(buf), MAX_BODY, &f),
                     sizeof(buf));
    assert_int_equal(
        rr__meta_unpack(&rawrpc__v1__request_meta__descriptor, &f, NULL, &m),
        RR_EPROTO);
    assert_null(m);

    // A wire type 7 tag is garbage to protobuf.
    memcpy(buf, vec_request, sizeof(buf));
    buf[12] = 0x0F;
    assert_int_equal(rr__frame_decode(buf, sizeof(buf), MAX_BODY, &f),
                     sizeof(buf));
    assert_int_equal(
        rr__meta_unpack(&rawrpc__v1__request_meta__descriptor, &f, NULL, &m),
        RR_EPROTO);
}

static void
test_meta_size_limits(void **state)
{
    (void) state;
    rr_buf b;
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    Rrtest__Echo echo = RRTEST__ECHO__INIT;
    char *method = malloc(70000);

    assert_non_null(method);
    memset(method, 'm', 69999);
    method[69999] = '\0';
    rr__buf_init(&b, 1 << 20);

    // Metadata over 65535 bytes cannot be framed.
    meta.method = method;
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, 1, &meta.base, NULL, MAX_BODY),
        RR_EMSGSIZE);
    assert_int_equal(rr__buf_size(&b), 0);

    // Body at the peer's limit fits; one byte more does not.
    char short_method[] = "/m";
    meta.method = short_method; // 4 bytes of metadata
    echo.data.data = (uint8_t *) method;
    echo.data.len = 1000 - 4 - 3; // tag + 2-byte length + bytes
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, 1, &meta.base, &echo.base, 1000),
        RR_OK);
    assert_int_equal(rr__buf_size(&b), RR_FRAME_HEADER_SIZE + 1000);
    echo.data.len++;
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, 2, &meta.base, &echo.base, 1000),
        RR_EMSGSIZE);
    // Metadata alone larger than the limit.
    meta.method = method + 69999 - 2000;
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, 3, &meta.base, NULL, 1000),
        RR_EMSGSIZE);
    assert_int_equal(rr__buf_size(&b), RR_FRAME_HEADER_SIZE + 1000);

    // The output buffer's cap: nothing appended.
    rr_buf small;
    rr__buf_init(&small, 20);
    char say[] = "/demo.Echo/Say";
    meta.method = say;
    assert_int_equal(
        rr__call_put(&small, RR_FRAME_REQUEST, 1, &meta.base, NULL, MAX_BODY),
        RR_ENOBUFS);
    assert_int_equal(rr__buf_size(&small), 0);
    rr__buf_fini(&small);
    rr__buf_fini(&b);
    free(method);
}

typedef struct counting {
    int live;
    int total;
} counting;

static void *
counting_alloc(void *data, size_t size)
{
    counting *c = data;
    c->live++;
    c->total++;
    return malloc(size);
}

static void
counting_free(void *data, void *p)
{
    counting *c = data;
    c->live--;
    free(p);
}

// The fast request-head encoder writes exactly what protobuf-c writes,
// for names of every length class and timeouts of every varint length.
static void
test_meta_request_head_matches_protobuf_c(void **state)
{
    (void) state;
    static const uint64_t timeouts[] = {
        0, 1, 127, 128, 16383, 16384, UINT32_MAX, (uint64_t) 1 << 62};
    static const size_t lens[] = {0, 1, 22, 127, 128, 255, 256, 300};
    const uint8_t payload[] = {0x0A, 0x01, 'z'};
    char name[301];

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (size_t j = 0; j < sizeof(timeouts) / sizeof(timeouts[0]); j++) {
            memset(name, 'a' + (int) (i % 26), lens[i]);
            name[lens[i]] = '\0';
            Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
            meta.method = name;
            meta.timeout_us = timeouts[j];
            rr_request_head h = {name, lens[i], timeouts[j]};
            rr_buf want, got;
            rr__buf_init(&want, 1 << 16);
            rr__buf_init(&got, 1 << 16);
            assert_int_equal(rr__call_put_raw(&want, RR_FRAME_REQUEST, 9,
                                              &meta.base, payload,
                                              sizeof(payload), MAX_BODY),
                             RR_OK);
            assert_int_equal(rr__request_put(&got, 9, &h, payload,
                                             sizeof(payload), MAX_BODY),
                             RR_OK);
            expect_bytes(&got, rr__buf_data(&want), rr__buf_size(&want));

            // ... and the fast decoder reads it back.
            rr_frame f;
            rr_request_head back;
            assert_true(rr__frame_decode(rr__buf_data(&got), rr__buf_size(&got),
                                         MAX_BODY, &f) > 0);
            assert_true(rr__request_head_decode(f.body, f.meta_len, &back));
            assert_int_equal(back.method_len, lens[i]);
            assert_memory_equal(back.method, name, lens[i]);
            assert_true(back.timeout_us == timeouts[j]);
            rr__buf_fini(&want);
            rr__buf_fini(&got);
        }
    }
}

// Whatever the fast decoder does not take is left to protobuf-c, and what
// it takes, it reads as protobuf-c does.
static void
test_meta_request_head_declines_the_rest(void **state)
{
    (void) state;
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t len;
        bool fast;
    } cases[] = {
        {"empty", {0}, 0, true},
        {"method only", {0x0A, 0x01, 'm'}, 3, true},
        {"timeout first", {0x10, 0x05, 0x0A, 0x01, 'm'}, 5, true},
        {"user metadata", {0x1A, 0x00}, 2, false},
        {"unknown field", {0x20, 0x01}, 2, false},
        {"repeated method", {0x0A, 0x01, 'm', 0x0A, 0x01, 'n'}, 6, false},
        {"NUL in method", {0x0A, 0x02, 'm', 0x00}, 4, false},
        {"method cut short", {0x0A, 0x05, 'm'}, 3, false},
        {"varint cut short", {0x10, 0x80}, 2, false},
        {"non-minimal tag", {0x8A, 0x00, 0x01, 'm'}, 4, false},
        {"method length in 5 bytes",
         {0x0A, 0x81, 0x80, 0x80, 0x80, 0x00, 'm'},
         7,
         true},
        {"method length in 9 bytes",
         {0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
         10,
         false},
        {"timeout of 2^63",
         {0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
         11,
         false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rr_request_head h;
        bool fast = rr__request_head_decode(cases[i].bytes, cases[i].len, &h);
        if (fast != cases[i].fast)
            fail_msg("%s: fast path %s", cases[i].what,
                     fast ? "taken" : "declined");
        if (!fast)
            continue;
        Rawrpc__V1__RequestMeta *m = rawrpc__v1__request_meta__unpack(
            NULL, cases[i].len, cases[i].bytes);
        assert_non_null(m);
        assert_int_equal(h.method_len, strlen(m->method));
        assert_memory_equal(h.method, m->method, h.method_len);
        assert_true(h.timeout_us == m->timeout_us);
        rawrpc__v1__request_meta__free_unpacked(m, NULL);
    }
}

// The shortcut for a known name takes only that name, first, with at most
// a timeout after it; where it takes the bytes, the decoder reads the same.
static void
test_meta_request_head_match(void **state)
{
    (void) state;
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t len;
        bool match;
        uint64_t timeout;
    } cases[] = {
        {"name only", {0x0A, 0x03, '/', 'a', 'b'}, 5, true, 0},
        {"name, timeout", {0x0A, 0x03, '/', 'a', 'b', 0x10, 0x05}, 7, true, 5},
        {"two-byte timeout",
         {0x0A, 0x03, '/', 'a', 'b', 0x10, 0x80, 0x01},
         8,
         true,
         128},
        {"zero timeout written",
         {0x0A, 0x03, '/', 'a', 'b', 0x10, 0x00},
         7,
         true,
         0},
        {"other name", {0x0A, 0x03, '/', 'a', 'c'}, 5, false, 0},
        {"longer name", {0x0A, 0x04, '/', 'a', 'b', 'c'}, 6, false, 0},
        {"name cut short", {0x0A, 0x03, '/', 'a'}, 4, false, 0},
        {"timeout first", {0x10, 0x05, 0x0A, 0x03, '/', 'a', 'b'}, 7, false, 0},
        {"user metadata after",
         {0x0A, 0x03, '/', 'a', 'b', 0x1A, 0x00},
         7,
         false,
         0},
        {"timeout cut short",
         {0x0A, 0x03, '/', 'a', 'b', 0x10, 0x80},
         7,
         false,
         0},
        {"two timeouts",
         {0x0A, 0x03, '/', 'a', 'b', 0x10, 0x05, 0x10, 0x06},
         9,
         false,
         0},
        {"timeout of 2^63",
         {0x0A, 0x03, '/', 'a', 'b', 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
          0x80, 0x80, 0x80, 0x01},
         16,
         false,
         0},
        {"empty", {0}, 0, false, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t t = 99;
        bool match =
            rr__request_head_match(cases[i].bytes, cases[i].len, "/ab", 3, &t);
        if (match != cases[i].match)
            fail_msg("%s: %s", cases[i].what, match ? "matched" : "missed");
        if (!match)
            continue;
        assert_true(t == cases[i].timeout);
        rr_request_head h;
        assert_true(rr__request_head_decode(cases[i].bytes, cases[i].len, &h));
        assert_int_equal(h.method_len, 3);
        assert_memory_equal(h.method, "/ab", 3);
        assert_true(h.timeout_us == t);
    }
    // A name of 128 bytes or more has a longer length prefix: never taken.
    char name[129];
    memset(name, 'n', sizeof(name));
    uint8_t b[3 + sizeof(name)] = {0x0A, 0x81, 0x01};
    memcpy(b + 3, name, sizeof(name));
    uint64_t t;
    assert_false(rr__request_head_match(b, sizeof(b), name, sizeof(name), &t));
    assert_false(rr__request_head_match(b, 2, "", 0, &t));
}

static void
test_meta_unpack_uses_given_allocator(void **state)
{
    (void) state;
    counting c = {0, 0};
    ProtobufCAllocator a = {counting_alloc, counting_free, &c};
    rr_frame f;
    ProtobufCMessage *m;

    // The runtime passes a per-call arena here; everything the metadata
    // needs must come from it.
    assert_true(rr__frame_decode(vec_request_md, sizeof(vec_request_md),
                                 MAX_BODY, &f) > 0);
    assert_int_equal(
        rr__meta_unpack(&rawrpc__v1__request_meta__descriptor, &f, &a, &m),
        RR_OK);
    assert_true(c.total > 0);
    protobuf_c_message_free_unpacked(m, &a);
    assert_int_equal(c.live, 0);
}

// The method name as the wire has it, NUL and all; the last one wins;
// other fields, known or not, are skipped by their wire type.
static void
test_meta_request_method_from_the_wire(void **state)
{
    (void) state;
    static const uint8_t nul[] = {0x0A, 5, '/', 'a', 0, 'b', 'c', 0x10, 0x05};
    static const uint8_t twice[] = {0x0A, 2,    '/', 'a', 0x1A,
                                    0,    0x0A, 2,   '/', 'b'};
    static const uint8_t skips[] = {0x21, 1,    2,    3, 4,
                                    5,    6,    7,    8,    // fixed64
                                    0x2D, 1,    2,    3, 4, // fixed32
                                    0x30, 0xFF, 0x01,       // varint
                                    0x0A, 1,    'm'};
    static const uint8_t group[] = {0x0B, 0x0C};
    static const uint8_t cut[] = {0x0A, 5, '/', 'a'};
    const char *name;
    size_t len;

    assert_true(rr__request_meta_method(nul, sizeof(nul), &name, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(name, "/a\0bc", 5);
    assert_true(rr__request_meta_method(twice, sizeof(twice), &name, &len));
    assert_int_equal(len, 2);
    assert_memory_equal(name, "/b", 2);
    assert_true(rr__request_meta_method(skips, sizeof(skips), &name, &len));
    assert_int_equal(len, 1);
    assert_true(rr__request_meta_method(NULL, 0, &name, &len));
    assert_int_equal(len, 0);
    assert_false(rr__request_meta_method(group, sizeof(group), &name, &len));
    assert_false(rr__request_meta_method(cut, sizeof(cut), &name, &len));
}

// Room for a message within a client's MAX_METADATA_SIZE, checked against
// what protobuf-c packs.
static void
test_meta_response_message_room(void **state)
{
    (void) state;
    char text[300];

    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    for (uint32_t status = 1; status <= 200; status += 199) {
        for (size_t limit = 0; limit < 280; limit++) {
            size_t room = rr__response_message_room(status, limit);
            Rawrpc__V1__ResponseMeta m = RAWRPC__V1__RESPONSE_META__INIT;
            m.status = status;
            m.message = text + sizeof(text) - 1 - room;
            size_t packed = protobuf_c_message_get_packed_size(&m.base);
            size_t alone = status < 128 ? 2 : 3;
            assert_true(packed <= (limit > alone ? limit : alone));
            // and one byte more would not fit
            if (room > 0) {
                m.message--;
                assert_true(protobuf_c_message_get_packed_size(&m.base) >
                            limit);
            }
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_request_vector),
        cmocka_unit_test(test_meta_request_with_user_metadata_vector),
        cmocka_unit_test(test_meta_response_vectors),
        cmocka_unit_test(test_meta_decode_request_and_payload_in_place),
        cmocka_unit_test(test_meta_decode_response),
        cmocka_unit_test(test_meta_truncated_and_garbled),
        cmocka_unit_test(test_meta_size_limits),
        cmocka_unit_test(test_meta_unpack_uses_given_allocator),
        cmocka_unit_test(test_meta_request_head_matches_protobuf_c),
        cmocka_unit_test(test_meta_request_head_declines_the_rest),
        cmocka_unit_test(test_meta_request_head_match),
        cmocka_unit_test(test_meta_request_method_from_the_wire),
        cmocka_unit_test(test_meta_response_message_room),
    };
    return cmocka_run_group_tests_name("meta", tests, NULL, NULL);
}
