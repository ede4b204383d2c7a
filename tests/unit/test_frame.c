// SPDX-License-Identifier: MIT
//
// test_frame.c -- the frame header codec: the spec's vectors byte for
// byte, every split point of a stream, coalesced frames, limits, and
// hostile headers.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "codec/buf.h"
#include "codec/frame.h"
#include "guard.h"
#include "rawrpc/rawrpc.h"
#include "vectors.h"

#define MAX_BODY (4u * 1024 * 1024)

typedef struct vec {
    const uint8_t *bytes;
    size_t len;
} vec;

#define VEC(a)                                                                 \
    {                                                                          \
        a, sizeof(a)                                                           \
    }

// Every frame vector of section 11, in stream order.
static const vec frame_vecs[] = {
    VEC(vec_settings),    VEC(vec_request),      VEC(vec_request_md),
    VEC(vec_response_ok), VEC(vec_response_err), VEC(vec_cancel),
    VEC(vec_ping),        VEC(vec_pong),         VEC(vec_goaway),
};
#define N_VECS (sizeof(frame_vecs) / sizeof(frame_vecs[0]))

// What a test remembers of a decoded frame, since body points into a
// buffer that moves.
typedef struct seen {
    rr_frame f;
    uint8_t body[64];
} seen;

static size_t
stream_build(uint8_t *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < N_VECS; i++) {
        assert_true(n + frame_vecs[i].len <= cap);
        memcpy(out + n, frame_vecs[i].bytes, frame_vecs[i].len);
        n += frame_vecs[i].len;
    }
    return n;
}

// Decodes every complete frame at the head of b, as a connection does.
static void
drain(rr_buf *b, seen *out, size_t *n)
{
    rr_frame f;
    ssize_t used;

    while ((used = rr__frame_decode(rr__buf_data(b), rr__buf_size(b), MAX_BODY,
                                    &f)) > 0) {
        assert_true(*n < N_VECS);
        assert_true(f.length <= sizeof(out[*n].body));
        out[*n].f = f;
        memcpy(out[*n].body, f.body, f.length);
        (*n)++;
        rr__buf_consume(b, (size_t) used);
    }
    assert_int_equal(used, 0); // never an error on valid input
}

static void
expect_all_vectors(const seen *s, size_t n)
{
    assert_int_equal(n, N_VECS);
    for (size_t i = 0; i < N_VECS; i++) {
        const vec *v = &frame_vecs[i];
        assert_int_equal(s[i].f.length, v->len - RR_FRAME_HEADER_SIZE);
        assert_int_equal(s[i].f.type, v->bytes[4]);
        assert_memory_equal(s[i].body, v->bytes + RR_FRAME_HEADER_SIZE,
                            s[i].f.length);
    }
}

static void
test_frame_decode_vectors(void **state)
{
    (void) state;
    rr_frame f;

    assert_int_equal(
        rr__frame_decode(vec_request, sizeof(vec_request), MAX_BODY, &f),
        sizeof(vec_request));
    assert_int_equal(f.length, 24);
    assert_int_equal(f.type, RR_FRAME_REQUEST);
    assert_int_equal(f.flags, 0);
    assert_int_equal(f.meta_len, 20);
    assert_int_equal(f.call_id, 1);
    assert_ptr_equal(f.body, vec_request + RR_FRAME_HEADER_SIZE);

    assert_int_equal(
        rr__frame_decode(vec_cancel, sizeof(vec_cancel), MAX_BODY, &f),
        RR_FRAME_HEADER_SIZE);
    assert_int_equal(f.type, RR_FRAME_CANCEL);
    assert_int_equal(f.call_id, 1);
    assert_int_equal(f.length, 0);

    assert_int_equal(
        rr__frame_decode(vec_goaway, sizeof(vec_goaway), MAX_BODY, &f),
        sizeof(vec_goaway));
    rr_goaway g;
    rr__goaway_parse(&f, &g);
    assert_int_equal(g.last_call_id, 7);
    assert_int_equal(g.code, RR_GOAWAY_NO_ERROR);
    assert_int_equal(g.message_len, 20);
    assert_memory_equal(g.message, "server shutting down", 20);
}

static void
test_frame_encode_vectors(void **state)
{
    (void) state;
    rr_buf b;
    const uint8_t ping[RR_PING_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8};

    rr__buf_init(&b, 1024);
    assert_int_equal(rr__frame_put_cancel(&b, 1), RR_OK);
    assert_int_equal(rr__frame_put_ping(&b, RR_FRAME_PING, ping), RR_OK);
    assert_int_equal(rr__frame_put_ping(&b, RR_FRAME_PONG, ping), RR_OK);
    assert_int_equal(
        rr__frame_put_goaway(&b, 7, RR_GOAWAY_NO_ERROR, "server shutting down"),
        RR_OK);

    size_t off = 0;
    const vec expect[] = {VEC(vec_cancel), VEC(vec_ping), VEC(vec_pong),
                          VEC(vec_goaway)};
    for (size_t i = 0; i < 4; i++) {
        assert_true(off + expect[i].len <= rr__buf_size(&b));
        assert_memory_equal(rr__buf_data(&b) + off, expect[i].bytes,
                            expect[i].len);
        off += expect[i].len;
    }
    assert_int_equal(off, rr__buf_size(&b));
    rr__buf_fini(&b);
}

static void
test_frame_round_trip_every_type(void **state)
{
    (void) state;
    rr_buf b;
    rr_frame f;

    rr__buf_init(&b, 1 << 16);
    // A GOAWAY with no message, and a raw frame of each call type.
    assert_int_equal(
        rr__frame_put_goaway(&b, 0, RR_GOAWAY_FRAME_TOO_LARGE, NULL), RR_OK);
    assert_int_equal(
        rr__frame_put(&b, RR_FRAME_RESPONSE, 0xFFFFFFFFu, "xyz", 3), RR_OK);
    assert_int_equal(rr__frame_put(&b, RR_FRAME_SETTINGS, 0, NULL, 0), RR_OK);

    ssize_t n = rr__frame_decode(rr__buf_data(&b), rr__buf_size(&b), 1024, &f);
    assert_int_equal(n, RR_FRAME_HEADER_SIZE + 8);
    rr_goaway g;
    rr__goaway_parse(&f, &g);
    assert_int_equal(g.code, RR_GOAWAY_FRAME_TOO_LARGE);
    assert_int_equal(g.message_len, 0);
    rr__buf_consume(&b, (size_t) n);

    n = rr__frame_decode(rr__buf_data(&b), rr__buf_size(&b), 1024, &f);
    assert_int_equal(n, RR_FRAME_HEADER_SIZE + 3);
    assert_int_equal(f.call_id, 0xFFFFFFFFu);
    assert_int_equal(f.type, RR_FRAME_RESPONSE);
    assert_memory_equal(f.body, "xyz", 3);
    rr__buf_consume(&b, (size_t) n);

    n = rr__frame_decode(rr__buf_data(&b), rr__buf_size(&b), 1024, &f);
    assert_int_equal(n, RR_FRAME_HEADER_SIZE);
    assert_int_equal(f.type, RR_FRAME_SETTINGS);
    rr__buf_fini(&b);
}

static void
test_frame_coalesced_stream(void **state)
{
    (void) state;
    uint8_t stream[512];
    size_t len = stream_build(stream, sizeof(stream));
    seen s[N_VECS];
    size_t n = 0;
    rr_buf b;

    memset(s, 0, sizeof(s));
    rr__buf_init(&b, sizeof(stream));
    assert_int_equal(rr__buf_append(&b, stream, len), RR_OK);
    drain(&b, s, &n); // one read carrying all nine frames
    expect_all_vectors(s, n);
    assert_int_equal(rr__buf_size(&b), 0);
    rr__buf_fini(&b);
}

static void
test_frame_every_split_point(void **state)
{
    (void) state;
    uint8_t stream[512];
    size_t len = stream_build(stream, sizeof(stream));

    // Two reads, split at every byte.
    for (size_t k = 0; k <= len; k++) {
        seen s[N_VECS];
        size_t n = 0;
        rr_buf b;
        memset(s, 0, sizeof(s));
        rr__buf_init(&b, sizeof(stream));
        assert_int_equal(rr__buf_append(&b, stream, k), RR_OK);
        drain(&b, s, &n);
        assert_int_equal(rr__buf_append(&b, stream + k, len - k), RR_OK);
        drain(&b, s, &n);
        expect_all_vectors(s, n);
        assert_int_equal(rr__buf_size(&b), 0);
        rr__buf_fini(&b);
    }

    // One byte per read.
    seen s[N_VECS];
    size_t n = 0;
    rr_buf b;
    memset(s, 0, sizeof(s));
    rr__buf_init(&b, sizeof(stream));
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(rr__buf_append(&b, stream + i, 1), RR_OK);
        drain(&b, s, &n);
    }
    expect_all_vectors(s, n);
    rr__buf_fini(&b);
}

static void
test_frame_every_prefix_is_incomplete(void **state)
{
    (void) state;

    // The input sits flush against a PROT_NONE page: any read past it
    // crashes the test.
    for (size_t i = 0; i < N_VECS; i++) {
        const vec *v = &frame_vecs[i];
        for (size_t p = 0; p <= v->len; p++) {
            rr_guard g;
            rr_frame f;
            assert_int_equal(rr_guard_copy(&g, v->bytes, p), 0);
            ssize_t n = rr__frame_decode(g.data, p, MAX_BODY, &f);
            assert_int_equal(n, p == v->len ? (ssize_t) p : 0);
            rr_guard_free(&g);
        }
    }
}

// A header with the given fields, and nothing after it.
static void
header(uint8_t *out, uint32_t length, uint8_t type, uint16_t meta_len,
       uint32_t call_id)
{
    rr_frame f = {.length = length,
                  .type = type,
                  .meta_len = meta_len,
                  .call_id = call_id};
    rr__frame_header_put(out, &f);
}

static ssize_t
decode_header(uint32_t length, uint8_t type, uint16_t meta_len,
              uint32_t call_id, uint32_t max, rr_frame *f)
{
    uint8_t h[RR_FRAME_HEADER_SIZE];

    header(h, length, type, meta_len, call_id);
    return rr__frame_decode(h, sizeof(h), max, f);
}

static void
test_frame_size_limit(void **state)
{
    (void) state;
    rr_frame f;
    const uint32_t max = 1000;

    // limit - 1 and limit are fine (incomplete: only the header is here);
    // limit + 1 fails from the header alone.
    assert_int_equal(decode_header(max - 1, RR_FRAME_REQUEST, 0, 1, max, &f),
                     0);
    assert_int_equal(decode_header(max, RR_FRAME_REQUEST, 0, 1, max, &f), 0);
    assert_int_equal(f.length, max); // the caller can size its buffer
    assert_int_equal(decode_header(max + 1, RR_FRAME_REQUEST, 0, 1, max, &f),
                     RR_EMSGSIZE);

    char msg[128];
    assert_int_equal(rr__frame_check(&f, max, msg, sizeof(msg)), RR_EMSGSIZE);
    assert_string_equal(msg, "frame of 1001 bytes exceeds the 1000-byte limit");
}

static void
test_frame_hostile_length_allocates_nothing(void **state)
{
    (void) state;
    rr_frame f;
    char msg[128];

    // 0xFFFFFFFF: rejected with only 12 bytes in hand.  The decoder cannot
    // allocate; what matters is that it says so before any body arrives.
    assert_int_equal(
        decode_header(0xFFFFFFFFu, RR_FRAME_REQUEST, 0, 1, MAX_BODY, &f),
        RR_EMSGSIZE);
    rr__frame_check(&f, MAX_BODY, msg, sizeof(msg));
    assert_string_equal(msg, "frame of 4294967295 bytes exceeds the "
                             "4194304-byte limit");
    // The example numbers, word for word.
    assert_int_equal(
        decode_header(9437184, RR_FRAME_RESPONSE, 0, 3, MAX_BODY, &f),
        RR_EMSGSIZE);
    rr__frame_check(&f, MAX_BODY, msg, sizeof(msg));
    assert_string_equal(msg, "frame of 9437184 bytes exceeds the "
                             "4194304-byte limit");
    // Even with the maximum limit, a huge frame is "incomplete", never a
    // read past the input.
    assert_int_equal(
        decode_header(0xFFFFFFFFu, RR_FRAME_REQUEST, 0, 1, UINT32_MAX, &f), 0);
}

typedef struct bad_header {
    uint32_t length;
    uint8_t type;
    uint16_t meta_len;
    uint32_t call_id;
    const char *msg;
} bad_header;

static void
test_frame_header_rules(void **state)
{
    (void) state;
    const bad_header bad[] = {
        {0, 0x00, 0, 0, "unknown frame type 0x00"},
        {0, 0x08, 0, 1, "unknown frame type 0x08"}, // reserved: streaming
        {0, 0x7F, 0, 1, "unknown frame type 0x7f"},
        {0, RR_FRAME_REQUEST, 0, 0, "REQUEST frame with call ID 0"},
        {0, RR_FRAME_RESPONSE, 0, 0, "RESPONSE frame with call ID 0"},
        {0, RR_FRAME_CANCEL, 0, 0, "CANCEL frame with call ID 0"},
        {8, RR_FRAME_PING, 0, 5,
         "PING frame with call ID 5; connection frames carry 0"},
        {8, RR_FRAME_GOAWAY, 0, 1,
         "GOAWAY frame with call ID 1; connection frames carry 0"},
        {6, RR_FRAME_SETTINGS, 1, 0,
         "SETTINGS frame with 1 metadata bytes; it carries none"},
        {10, RR_FRAME_REQUEST, 11, 1,
         "metadata of 11 bytes exceeds the 10-byte frame body"},
        {7, RR_FRAME_SETTINGS, 0, 0, "SETTINGS frame with a body of 7 bytes"},
        {1, RR_FRAME_CANCEL, 0, 1, "CANCEL frame with a body of 1 bytes"},
        {7, RR_FRAME_PING, 0, 0, "PING frame with a body of 7 bytes"},
        {9, RR_FRAME_PONG, 0, 0, "PONG frame with a body of 9 bytes"},
        {7, RR_FRAME_GOAWAY, 0, 0, "GOAWAY frame with a body of 7 bytes"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rr_frame f;
        char msg[128];
        assert_int_equal(decode_header(bad[i].length, bad[i].type,
                                       bad[i].meta_len, bad[i].call_id,
                                       MAX_BODY, &f),
                         RR_EPROTO);
        assert_int_equal(rr__frame_check(&f, MAX_BODY, msg, sizeof(msg)),
                         RR_EPROTO);
        assert_string_equal(msg, bad[i].msg);
    }
}

static void
test_frame_extension_types_are_skippable(void **state)
{
    (void) state;
    uint8_t buf[RR_FRAME_HEADER_SIZE + 5 + sizeof(vec_cancel)];
    rr_frame f;

    // An unknown extension frame, with fields that would be illegal on a
    // core type, followed by a CANCEL: the decoder hands back the
    // extension whole so the caller skips it, then the CANCEL.
    header(buf, 5, 0xC3, 4, 0);
    memset(buf + RR_FRAME_HEADER_SIZE, 'x', 5);
    memcpy(buf + RR_FRAME_HEADER_SIZE + 5, vec_cancel, sizeof(vec_cancel));
    ssize_t n = rr__frame_decode(buf, sizeof(buf), MAX_BODY, &f);
    assert_int_equal(n, RR_FRAME_HEADER_SIZE + 5);
    assert_int_equal(f.type, 0xC3);
    n = rr__frame_decode(buf + n, sizeof(buf) - (size_t) n, MAX_BODY, &f);
    assert_int_equal(n, sizeof(vec_cancel));
    assert_int_equal(f.type, RR_FRAME_CANCEL);
    // The size limit still applies to extensions.
    assert_int_equal(decode_header(MAX_BODY + 1, 0xFF, 0, 0, MAX_BODY, &f),
                     RR_EMSGSIZE);
}

static void
test_frame_flags_are_ignored(void **state)
{
    (void) state;
    uint8_t buf[sizeof(vec_ping)];
    rr_frame f;

    memcpy(buf, vec_ping, sizeof(buf));
    buf[5] = 0xFF; // every flag bit set: v1 knows none and ignores them
    assert_int_equal(rr__frame_decode(buf, sizeof(buf), MAX_BODY, &f),
                     sizeof(buf));
    assert_int_equal(f.flags, 0xFF);
}

static void
test_frame_put_respects_buffer_cap(void **state)
{
    (void) state;
    rr_buf b;
    const uint8_t ping[RR_PING_SIZE] = {0};

    rr__buf_init(&b, RR_FRAME_HEADER_SIZE + RR_PING_SIZE + 5);
    assert_int_equal(rr__frame_put_ping(&b, RR_FRAME_PING, ping), RR_OK);
    assert_int_equal(rr__frame_put_cancel(&b, 9), RR_ENOBUFS);
    assert_int_equal(rr__frame_put_goaway(&b, 0, 0, "x"), RR_ENOBUFS);
    // Nothing half-written: what is there is exactly the PING.
    assert_int_equal(rr__buf_size(&b), RR_FRAME_HEADER_SIZE + RR_PING_SIZE);
    rr__buf_fini(&b);
}

static void
test_frame_names(void **state)
{
    (void) state;

    assert_string_equal(rr__frame_type_name(RR_FRAME_REQUEST), "REQUEST");
    assert_string_equal(rr__frame_type_name(RR_FRAME_GOAWAY), "GOAWAY");
    assert_string_equal(rr__frame_type_name(0x09), "unknown");
    assert_string_equal(rr__frame_type_name(0xFF), "unknown");
    assert_string_equal(rr__goaway_code_name(RR_GOAWAY_FRAME_TOO_LARGE),
                        "FRAME_TOO_LARGE");
    assert_string_equal(rr__goaway_code_name(RR_GOAWAY_INTERNAL_ERROR),
                        "INTERNAL_ERROR");
    assert_string_equal(rr__goaway_code_name(10), "PROTOCOL_ERROR");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_decode_vectors),
        cmocka_unit_test(test_frame_encode_vectors),
        cmocka_unit_test(test_frame_round_trip_every_type),
        cmocka_unit_test(test_frame_coalesced_stream),
        cmocka_unit_test(test_frame_every_split_point),
        cmocka_unit_test(test_frame_every_prefix_is_incomplete),
        cmocka_unit_test(test_frame_size_limit),
        cmocka_unit_test(test_frame_hostile_length_allocates_nothing),
        cmocka_unit_test(test_frame_header_rules),
        cmocka_unit_test(test_frame_extension_types_are_skippable),
        cmocka_unit_test(test_frame_flags_are_ignored),
        cmocka_unit_test(test_frame_put_respects_buffer_cap),
        cmocka_unit_test(test_frame_names),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
