// SPDX-License-Identifier: MIT
//
// test_conformance.c -- the server against docs/PROTOCOL.md, from a raw
// socket, on the rules a second implementation of the spec found broken:
// replies after a half-close, byte-exact method names, the client's
// MAX_METADATA_SIZE, UTF-8 status messages, the heartbeat's cadence, the
// client's GOAWAY, extension frames and reserved metadata keys.  The grace
// period's status is in test_faults.c; the Python peer in tests/interop
// covers the rest of the spec.

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "codec/byteorder.h"
#include "harness.h"
#include "codec/meta.h"
#include "codec/preface.h"
#include "codec/utf8.h"

static void
reply_held(fixture *fx, size_t i)
{
    assert_int_equal(rr_call_reply(fx->held[i], &fx->held_req[i]->base), RR_OK);
    fx->held[i] = NULL;
}

// ------------------------------------------------------------ half-close

// "Send everything, then shutdown(SHUT_WR), then read": every accepted
// call is answered, the two held ones after the EOF was read, then the
// server closes (section 6).  The old server closed at the EOF and lost
// every reply not yet written.
static void
test_conformance_half_close_answers_every_call(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    enum { N = 259 };
    int seen[N + 1] = {0};
    rawpeer_reply_t r;
    rr_goaway g = {0};

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "slow", 0);
    rawpeer_request(&p, 2, test_methods[M_ECHO].full_name, "put", 0);
    for (uint32_t id = 3; id < N; id++)
        rawpeer_request(&p, id, test_methods[M_BIG].full_name, "16384", 0);
    rawpeer_request(&p, N, test_methods[M_HOLD].full_name, "slower", 0);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);

    // Up to the GOAWAY the server sends once it reads the EOF.
    while (rawpeer_reply(&p, &r, &g)) {
        assert_true(r.id >= 1 && r.id <= N);
        seen[r.id]++;
    }
    assert_int_equal(g.code, RR_GOAWAY_NO_ERROR);
    assert_int_equal(g.last_call_id, N);
    assert_int_equal(fx->n_held, 2);
    reply_held(fx, 1);
    reply_held(fx, 0);
    while (rawpeer_reply(&p, &r, NULL)) {
        assert_int_equal(r.status, RR_STATUS_OK);
        seen[r.id]++;
    }
    assert_true(p.eof); // and then the server closed
    for (uint32_t id = 1; id <= N; id++)
        assert_int_equal(seen[id], 1);
    assert_int_equal(fx->cancels, 0);
    rawpeer_close(&p);
    fx_expect_service(fx);
}

// Replies larger than the socket's buffers are all written too.
static void
test_conformance_half_close_flushes_large_replies(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    size_t n = 0;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    for (uint32_t id = 1; id <= 16; id++)
        rawpeer_request(&p, id, test_methods[M_BIG].full_name, "262144", 0);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    for (;;) {
        if (!rawpeer_reply(&p, &r, NULL)) {
            if (p.eof)
                break;
            continue; // the GOAWAY
        }
        assert_int_equal(r.status, RR_STATUS_OK);
        assert_int_equal(r.data_len, 262144);
        n++;
    }
    assert_int_equal(n, 16);
    rawpeer_close(&p);
}

// A peer that closed its socket, rather than half-closing it, answers
// the server's GOAWAY with a reset: its calls are cancelled at once, not
// left running until they complete.
static void
test_conformance_closed_peer_cancels_its_calls(void **state)
{
    fixture *fx = *state;
    rawpeer p;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    rawpeer_close(&p);
    while (fx->cancels == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(fx->cancels, 1);
    assert_true(rr_call_cancelled(fx->held[0]));
    reply_held(fx, 0);
}

// A peer that half-closes and then stops reading cannot hold the
// connection for ever: output that does not move for a heartbeat
// timeout ends it.
static void
test_conformance_half_closed_peer_that_stops_reading(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;

    rr_server_opts_init(&so);
    so.heartbeat_interval = 0.1;
    so.heartbeat_timeout = 0.2;
    so.out_high_water = (size_t) 128 * 1024 * 1024;
    so.out_low_water = 0;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    for (uint32_t id = 2; id <= 33; id++)
        rawpeer_request(&p, id, test_methods[M_BIG].full_name, "1048576", 0);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    ev_io_stop(fx->loop, &p.io); // and read nothing
    while (fx->cancels == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(fx->cancels, 1);
    reply_held(fx, 0);
    p.eof = true;
    rawpeer_close(&p);
}

// ---------------------------------------------------------- method names

// A RequestMeta with the method field holding len bytes of name, then
// (when extra) a user metadata entry, which sends the server down the
// protobuf-c path.  Returns its length.
static size_t
meta_with_name(uint8_t *out, const char *name, size_t len, bool extra)
{
    static const uint8_t entry[] = {0x1A, 0x07, 0x0A, 0x01, 'k',
                                    0x12, 0x02, 'v',  'v'};
    size_t n = 0;

    out[n++] = 0x0A;
    for (size_t v = len; v >= 0x80; v >>= 7)
        out[n++] = (uint8_t) (v | 0x80);
    out[n++] = (uint8_t) (len >> (len >= 0x80 ? 7 : 0));
    memcpy(out + n, name, len);
    n += len;
    if (extra) {
        memcpy(out + n, entry, sizeof(entry));
        n += sizeof(entry);
    }
    return n;
}

// Names match byte for byte, length included, on the fast path and the
// protobuf-c path: "/rrtest.Test/Echo\0..." ran Echo before.
static void
test_conformance_method_names_match_byte_for_byte(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *name;
        size_t len;
        rr_status want;
        const char *message;
    } cases[] = {
        {"/rrtest.Test/Echo", 17, RR_STATUS_OK, ""},
        {"/rrtest.Test/Echo\0/evil.Admin/Wipe", 34, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.Test/Echo\\x00/evil.Admin/Wipe"},
        {"/rrtest.Test/Echo\0", 18, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.Test/Echo\\x00"},
        {"/rrtest.test/Echo", 17, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.test/Echo"},
        {"/rrtest.Test/Ech", 16, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.Test/Ech"},
        {"/rrtest.Test/Echo ", 18, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.Test/Echo "},
    };
    rawpeer p;
    uint8_t meta[128];
    uint32_t id = 0;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int extra = 0; extra < 2; extra++) {
            size_t n = meta_with_name(meta, cases[i].name, cases[i].len, extra);
            rawpeer_request_meta(&p, ++id, meta, n, "x");
            rawpeer_reply_t r;
            assert_true(rawpeer_reply(&p, &r, NULL));
            assert_int_equal(r.id, id);
            assert_int_equal(r.status, cases[i].want);
            assert_string_equal(r.message, cases[i].message);
        }
    }
    // A repeated name: the last one counts, as protobuf reads it.
    uint8_t two[64];
    size_t n = meta_with_name(two, "/rrtest.Test/Echo", 17, false);
    n += meta_with_name(two + n, "/rrtest.Test/Nope", 17, false);
    rawpeer_request_meta(&p, ++id, two, n, "x");
    rawpeer_reply_t r;
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.status, RR_STATUS_UNIMPLEMENTED);
    rawpeer_close(&p);
}

// --------------------------------------------------- the client's limits

// The RESPONSE's metadata fits the client's MAX_METADATA_SIZE: the
// message is shortened between characters, then dropped; the status goes
// even when the limit cannot hold it (section 4).
static void
test_conformance_response_meta_fits_client_limit(void **state)
{
    fixture *fx = *state;
    static const struct {
        uint32_t limit;
        const char *message; // of NOT_FOUND "no such key", 15 bytes in all
    } cases[] = {
        {0, ""},
        {1, ""},
        {2, ""},
        {4, ""},
        {5, "n"},
        {14, "no such ke"},
        {15, "no such key"},
        {8192, "no such key"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rr_settings s;
        rawpeer p;
        rawpeer_reply_t r;

        rr__settings_init(&s);
        s.max_metadata_size = cases[i].limit;
        rawpeer_connect_with(&p, fx, &s);
        rawpeer_request(&p, 1, test_methods[M_FAIL].full_name, "x", 0);
        assert_true(rawpeer_reply(&p, &r, NULL));
        assert_int_equal(r.status, RR_STATUS_NOT_FOUND);
        assert_string_equal(r.message, cases[i].message);
        assert_true(r.meta_len <= (cases[i].limit > 2 ? cases[i].limit : 2));
        rawpeer_close(&p);
    }
}

// ----------------------------------------------------------- UTF-8 text

static void
h_fail_raw(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) req;
    (void) arg;
    char msg[2100];

    // Ill-formed bytes, then 1 000 two-byte characters: too long.
    memcpy(msg, "bad \xc3( \xff!", 9);
    for (size_t i = 0; i < 1000; i++)
        memcpy(msg + 9 + 2 * i, "\xc3\xa9", 2);
    msg[2009] = '\0';
    rr_call_fail(call, RR_STATUS_INTERNAL, msg);
}

// Every message is well-formed UTF-8, at most 1024 bytes, cut between
// characters: an unknown method "ff fe" was quoted raw, and a long name
// cut in the middle of a character (sections 5.2 and 5.3).
static void
test_conformance_status_messages_are_utf8(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    uint8_t meta[512];
    char name[400];

    fx->handlers[M_UNSET] = h_fail_raw;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);

    size_t n = meta_with_name(meta, "/x/\xff\xfe", 5, false);
    rawpeer_request_meta(&p, 1, meta, n, "x");
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.status, RR_STATUS_UNIMPLEMENTED);
    assert_string_equal(r.message, "unknown method /x/\\xff\\xfe");

    // 2 + 100 three-byte characters: 302 bytes, over the quote's room.
    size_t k = 0;
    name[k++] = '/';
    name[k++] = 'x';
    for (size_t i = 0; i < 100; i++) {
        name[k++] = (char) 0xE2; // U+20AC, the euro sign
        name[k++] = (char) 0x82;
        name[k++] = (char) 0xAC;
    }
    n = meta_with_name(meta, name, 302, false);
    rawpeer_request_meta(&p, 2, meta, n, "x");
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.status, RR_STATUS_UNIMPLEMENTED);
    assert_true(rr__utf8_valid((const uint8_t *) r.message, r.message_len));
    assert_string_equal(r.message + r.message_len - 6, "\xe2\x82\xac...");

    rawpeer_request(&p, 3, test_methods[M_UNSET].full_name, "x", 0);
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.status, RR_STATUS_INTERNAL);
    assert_true(rr__utf8_valid((const uint8_t *) r.message, r.message_len));
    assert_true(r.message_len <= RR_STATUS_MESSAGE_MAX);
    assert_true(r.message_len > RR_STATUS_MESSAGE_MAX - 2);
    assert_memory_equal(r.message, "bad \\xc3( \\xff!\xc3\xa9", 17);
    rawpeer_close(&p);
}

// ------------------------------------------------------------ heartbeat

// A peer that answers every PING at once and counts them.
typedef struct pinger {
    rawpeer p;
    ev_io io;
    int pings;
} pinger;

static void
pinger_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    pinger *pg = (pinger *) (void *) ((char *) w - offsetof(pinger, io));
    uint8_t buf[4096], out[RR_FRAME_HEADER_SIZE + RR_PING_SIZE];
    ssize_t n = recv(pg->p.fd, buf, sizeof(buf), 0);

    assert_true(n > 0);
    // Skip the preface and SETTINGS; PINGs arrive one per read here.
    for (ssize_t i = 0; i + 20 <= n; i++) {
        if (buf[i + 4] == RR_FRAME_PING && rr__get_be32(buf + i) == 8 &&
            rr__get_be32(buf + i + 8) == 0) {
            memcpy(out, buf + i, sizeof(out));
            out[4] = RR_FRAME_PONG;
            rawpeer_send(&pg->p, out, sizeof(out));
            pg->pings++;
            i += 19;
        }
    }
}

// With a 0.25 s interval and every PING answered at once, PINGs keep
// coming every 0.25 s; the old server waited the 10 s timeout after each
// one (section 8).
static void
test_conformance_heartbeat_keeps_its_interval(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    pinger pg = {.pings = 0};

    rr_server_opts_init(&so);
    so.heartbeat_interval = 0.25;
    so.heartbeat_timeout = 10;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&pg.p, fx);
    ev_io_stop(fx->loop, &pg.p.io);
    ev_io_init(&pg.io, pinger_cb, pg.p.fd, EV_READ);
    ev_io_start(fx->loop, &pg.io);
    rawpeer_handshake(&pg.p);
    fx_run_for(fx, 1.4);
    ev_io_stop(fx->loop, &pg.io);
    assert_in_range(pg.pings, 4, 6);
    rawpeer_close(&pg.p);
}

// Bytes of a frame still arriving are traffic: a REQUEST that trickles
// in slower than the heartbeat timeout keeps its connection.
typedef struct trickle {
    rawpeer *p;
    ev_timer t;
    uint8_t frame[256];
    size_t len, sent;
} trickle;

static void
trickle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    trickle *tr = (trickle *) (void *) ((char *) w - offsetof(trickle, t));

    size_t n = tr->len - tr->sent < 4 ? tr->len - tr->sent : 4;

    rawpeer_send(tr->p, tr->frame + tr->sent, n);
    tr->sent += n;
    if (tr->sent >= tr->len)
        ev_timer_stop(loop, w);
}

static void
test_conformance_partial_frame_counts_as_traffic(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;
    trickle tr = {.p = &p};
    rr_buf b;
    uint32_t id;
    char msg[64];

    rr_server_opts_init(&so);
    so.heartbeat_interval = 0.3;
    so.heartbeat_timeout = 0.3;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    // 4 bytes every 0.05 s: the 60-byte REQUEST takes 0.75 s.
    rr__buf_init(&b, sizeof(tr.frame));
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    Rrtest__Echo e = RRTEST__ECHO__INIT;
    meta.method = (char *) test_methods[M_ECHO].full_name;
    e.text = (char *) "trickled in, four bytes at a time";
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, 1, &meta.base, &e.base, 1024),
        RR_OK);
    tr.len = rr__buf_size(&b);
    memcpy(tr.frame, rr__buf_data(&b), tr.len);
    rr__buf_fini(&b);
    ev_timer_init(&tr.t, trickle_cb, 0.05, 0.05);
    ev_timer_start(fx->loop, &tr.t);
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)), RR_STATUS_OK);
    assert_int_equal(id, 1);
    ev_timer_stop(fx->loop, &tr.t);
    rawpeer_close(&p);
}

// ------------------------------------------------------ the client's GOAWAY

// After its GOAWAY the client's calls in flight are answered, then the
// server closes gracefully on its own: before, it waited for ever.
static void
test_conformance_client_goaway_finishes_the_connection(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r = {.id = 0};

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    rawpeer_send_goaway(&p, 0, RR_GOAWAY_NO_ERROR, "client done");
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    reply_held(fx, 0);
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.id, 1);
    assert_int_equal(r.status, RR_STATUS_OK);
    rawpeer_wait_eof(&p);
    rawpeer_close(&p);
}

// A REQUEST after the client said it would send none is a protocol error.
// (With nothing in flight the server would already be closing: a call is
// held to keep the connection open.)
static void
test_conformance_request_after_client_goaway(void **state)
{
    fixture *fx = *state;
    rawpeer p;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    rawpeer_send_goaway(&p, 0, RR_GOAWAY_NO_ERROR, "client done");
    rawpeer_request(&p, 2, test_methods[M_ECHO].full_name, "late", 0);
    rawpeer_expect_goaway(&p, RR_GOAWAY_PROTOCOL_ERROR,
                          "REQUEST 2 after the client's GOAWAY");
    rawpeer_close(&p);
    assert_int_equal(fx->cancels, 1);
    reply_held(fx, 0);
    fx_expect_service(fx);
}

// ------------------------------------------------------- extension frames

// SETTINGS comes first, extension frames included (section 2 over
// section 3's rule 5); MAX_FRAME_SIZE bounds extension frames too; every
// SETTINGS entry is checked, even one a later entry repeats.
static void
test_conformance_extension_and_settings_rules(void **state)
{
    fixture *fx = *state;
    static const uint8_t ext_empty[] = {0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t ext_huge[] = {0x00, 0x40, 0x00, 0x01, 0xF0, 0,
                                       0,    0,    0,    0,    0,    0};
    static const uint8_t settings_twice[] = {
        0, 0, 0, 12, RR_FRAME_SETTINGS,
        0, 0, 0, 0,  0,
        0, 0, 0, 1,  0,
        0, 0, 1, // MAX_FRAME_SIZE 1: out of range
        0, 1, 0, 0,  0x10,
        0, // then 4096: valid
    };
    rawpeer p;

    rawpeer_connect(&p, fx);
    rawpeer_send(&p, rr__magic, RR_MAGIC_SIZE);
    rawpeer_send(&p, "\x00\x01\x00\x00", 4);
    rawpeer_send(&p, ext_empty, sizeof(ext_empty));
    rawpeer_expect_goaway(&p, RR_GOAWAY_PROTOCOL_ERROR, NULL);
    rawpeer_close(&p);

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_send(&p, ext_empty, sizeof(ext_empty)); // skipped
    rawpeer_send(&p, ext_huge, sizeof(ext_huge));
    rawpeer_expect_goaway(&p, RR_GOAWAY_FRAME_TOO_LARGE, NULL);
    rawpeer_close(&p);

    rawpeer_connect(&p, fx);
    rawpeer_send(&p, rr__magic, RR_MAGIC_SIZE);
    rawpeer_send(&p, "\x00\x01\x00\x00", 4);
    rawpeer_send(&p, settings_twice, sizeof(settings_twice));
    rawpeer_expect_goaway(&p, RR_GOAWAY_SETTINGS_ERROR, NULL);
    rawpeer_close(&p);
    fx_expect_service(fx);
}

// ------------------------------------------------------ reserved metadata

// Keys starting with "rr-" belong to the protocol: a call carrying one
// runs, and its handler does not see it (section 5.2).
static void
test_conformance_reserved_keys_are_not_shown(void **state)
{
    fixture *fx = *state;
    static const uint8_t meta[] = {
        0x0A, 17,   '/', 'r', 'r', 't', 'e', 's',  't',  '.',  'T', 'e',
        's',  't',  '/', 'M', 'e', 't', 'a', 0x1A, 14,   0x0A, 8,   'r',
        'r',  '-',  't', 'r', 'a', 'c', 'e', 0x12, 2,    'i',  'd', 0x1A,
        11,   0x0A, 5,   't', 'r', 'a', 'c', 'e',  0x12, 2,    'i', 'd'};
    rawpeer p;
    rr_frame f;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request_meta(&p, 1, meta, sizeof(meta), "rr-trace");
    rawpeer_request_meta(&p, 2, meta, sizeof(meta), "trace");
    for (uint32_t want = 1; want <= 2;) {
        assert_true(rawpeer_frame(&p, &f));
        if (f.type != RR_FRAME_RESPONSE)
            continue;
        assert_int_equal(f.call_id, want);
        assert_int_equal(f.meta_len, 0); // OK
        Rrtest__Echo *e = rrtest__echo__unpack(NULL, rr__frame_payload_len(&f),
                                               rr__frame_payload(&f));
        assert_non_null(e);
        assert_string_equal(e->text, want == 1 ? "(absent)" : "id");
        rrtest__echo__free_unpacked(e, NULL);
        want++;
    }
    rawpeer_close(&p);
}

int
main(void)
{
#define T(name)                                                                \
    cmocka_unit_test_setup_teardown(name, fx_group_setup, fx_group_teardown)
    const struct CMUnitTest tests[] = {
        T(test_conformance_half_close_answers_every_call),
        T(test_conformance_half_close_flushes_large_replies),
        T(test_conformance_closed_peer_cancels_its_calls),
        T(test_conformance_half_closed_peer_that_stops_reading),
        T(test_conformance_method_names_match_byte_for_byte),
        T(test_conformance_response_meta_fits_client_limit),
        T(test_conformance_status_messages_are_utf8),
        T(test_conformance_heartbeat_keeps_its_interval),
        T(test_conformance_partial_frame_counts_as_traffic),
        T(test_conformance_client_goaway_finishes_the_connection),
        T(test_conformance_request_after_client_goaway),
        T(test_conformance_extension_and_settings_rules),
        T(test_conformance_reserved_keys_are_not_shown),
    };
#undef T
    return cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
}
