// SPDX-License-Identifier: MIT
//
// test_review.c -- an outside review's hostile cases against the
// promises of rawrpc.h and docs/PROTOCOL.md (half-close, method names,
// the client's MAX_METADATA_SIZE, UTF-8, client GOAWAY, on_cancel).
// The review found no broken promise: every case held, and each stays
// here as a regression test (test_held_<what>).

#include <errno.h>
#include <pthread.h>
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
wait_held(fixture *fx, size_t n)
{
    while (fx->n_held < n && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(fx->n_held, n);
}

static void
reply_held(fixture *fx, size_t i)
{
    assert_int_equal(rr_call_reply(fx->held[i], &fx->held_req[i]->base), RR_OK);
    fx->held[i] = NULL;
}

// method field (varint length, any encoding width) + optional extra entry
static size_t
meta_name(uint8_t *out, const char *name, size_t len, int pad, bool extra)
{
    static const uint8_t entry[] = {0x1A, 0x07, 0x0A, 0x01, 'k',
                                    0x12, 0x02, 'v',  'v'};
    size_t n = 0, v = len;

    out[n++] = 0x0A;
    while (v >= 0x80 || pad > 0) {
        out[n++] = (uint8_t) ((v & 0x7F) | 0x80);
        v >>= 7;
        if (v < 0x80 && pad > 0)
            pad--;
        if (v == 0 && pad == 0)
            break;
    }
    out[n++] = (uint8_t) v;
    memcpy(out + n, name, len);
    n += len;
    if (extra) {
        memcpy(out + n, entry, sizeof(entry));
        n += sizeof(entry);
    }
    return n;
}

// =============================================== A. attacks that HELD

// Half-close with the EOF arriving in the middle of a REQUEST: the whole
// calls are answered, the partial one is left unread (section 9).
static void
test_held_eof_mid_frame(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    rr_goaway g = {0};
    rr_buf b;
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    Rrtest__Echo e = RRTEST__ECHO__INIT;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    rr__buf_init(&b, 4096);
    meta.method = (char *) test_methods[M_ECHO].full_name;
    e.text = (char *) "half a frame";
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, 2, &meta.base, &e.base, 1024),
        RR_OK);
    rawpeer_send(&p, rr__buf_data(&b), rr__buf_size(&b) - 5);
    rr__buf_fini(&b);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    assert_false(rawpeer_reply(&p, &r, &g));
    assert_int_equal(g.code, RR_GOAWAY_NO_ERROR);
    assert_int_equal(g.last_call_id, 1);
    wait_held(fx, 1);
    reply_held(fx, 0);
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.id, 1);
    assert_int_equal(r.status, RR_STATUS_OK);
    assert_false(rawpeer_reply(&p, &r, NULL));
    assert_true(p.eof);
    rawpeer_close(&p);
}

// The client's GOAWAY, then its EOF: the held call is still answered.
static void
test_held_client_goaway_then_eof(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    rawpeer_send_goaway(&p, 0, RR_GOAWAY_NO_ERROR, "bye");
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    wait_held(fx, 1);
    fx_run_for(fx, 0.1);
    assert_int_equal(fx->cancels, 0);
    reply_held(fx, 0);
    bool got = false;
    while (rawpeer_reply(&p, &r, NULL) || !p.eof) {
        if (p.eof)
            break;
        if (r.id == 1) {
            assert_int_equal(r.status, RR_STATUS_OK);
            got = true;
        }
    }
    assert_true(got);
    rawpeer_close(&p);
}

// Half-close before SETTINGS: the server closes promptly, not at the
// handshake timeout (60 s here, the guard is 30 s).
static void
test_held_half_close_before_settings(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;

    rr_server_opts_init(&so);
    so.handshake_timeout = 60;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_send(&p, rr__magic, RR_MAGIC_SIZE);
    rawpeer_send(&p, "\x00\x01\x00\x00", 4);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    rawpeer_wait_eof(&p);
    assert_false(fx->guard_fired);
    rawpeer_close(&p);
}

// Half-close during the server's graceful shutdown: the held call is
// answered, the shutdown callback runs.
static void
shut_cb(rr_server *srv, void *arg)
{
    (void) srv;
    *(bool *) arg = true;
}

static void
test_held_half_close_during_shutdown(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    bool done = false, got = false;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    wait_held(fx, 1);
    assert_int_equal(rr_server_shutdown(fx->srv, 5, shut_cb, &done), RR_OK);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    fx_run_for(fx, 0.1);
    reply_held(fx, 0);
    for (int i = 0; i < 10 && !p.eof; i++) {
        if (rawpeer_reply(&p, &r, NULL) && r.id == 1) {
            assert_int_equal(r.status, RR_STATUS_OK);
            got = true;
        }
    }
    assert_true(got);
    fx_run_until(fx, &done);
    assert_int_equal(fx->cancels, 0);
    rawpeer_close(&p);
}

// Half-close racing a reply from a worker thread.
static void *
worker(void *arg)
{
    rr_call *call = arg;
    Rrtest__Echo out = RRTEST__ECHO__INIT;
    out.text = (char *) "from thread";
    rr_call_reply_from_thread(call, &out.base);
    return NULL;
}

static pthread_t workers[8];
static int n_workers;

static void
h_thread(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) req;
    (void) arg;
    assert_int_equal(pthread_create(&workers[n_workers++], NULL, worker, call),
                     0);
}

static void
test_held_half_close_vs_reply_from_thread(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    int got = 0;

    fx->handlers[M_THREAD] = h_thread;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    n_workers = 0;
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    for (uint32_t id = 1; id <= 8; id++)
        rawpeer_request(&p, id, test_methods[M_THREAD].full_name, "t", 0);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    for (int i = 0; i < 40 && !p.eof; i++) {
        if (rawpeer_reply(&p, &r, NULL)) {
            assert_int_equal(r.status, RR_STATUS_OK);
            got++;
        }
    }
    for (int i = 0; i < n_workers; i++)
        pthread_join(workers[i], NULL);
    assert_int_equal(got, 8);
    rawpeer_close(&p);
}

// Half-close while reading is paused over the high-water mark: the EOF
// is seen once output drains and every call is answered.
static void
test_held_half_close_over_high_water(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;
    rawpeer_reply_t r;
    int got = 0;

    rr_server_opts_init(&so);
    so.out_high_water = (size_t) 64 * 1024;
    so.out_low_water = (size_t) 16 * 1024;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    for (uint32_t id = 1; id <= 40; id++)
        rawpeer_request(&p, id, test_methods[M_BIG].full_name, "100000", 0);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    for (int i = 0; i < 200 && !p.eof; i++) {
        if (rawpeer_reply(&p, &r, NULL)) {
            assert_int_equal(r.status, RR_STATUS_OK);
            got++;
        }
    }
    assert_int_equal(got, 40);
    rawpeer_close(&p);
}

// Names >= 128 bytes (two-byte varint lengths): unknown, quoted whole;
// repeated method field on the protobuf-c path: the last counts.
static void
test_held_long_and_repeated_names(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    uint8_t meta[1024];
    char name[300];
    size_t n;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    memset(name, 'a', sizeof(name));
    memcpy(name, test_methods[M_ECHO].full_name, 17);
    n = meta_name(meta, name, 200, 0, false);
    rawpeer_request_meta(&p, 1, meta, n, "x");
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.status, RR_STATUS_UNIMPLEMENTED);
    assert_true(rr__utf8_valid((const uint8_t *) r.message, r.message_len));
    for (int extra = 0; extra < 2; extra++) {
        n = meta_name(meta, "/rrtest.Test/Nope", 17, 0, false);
        n += meta_name(meta + n, "/rrtest.Test/Echo", 17, 0, extra);
        rawpeer_request_meta(&p, 2 + (uint32_t) extra, meta, n, "x");
        assert_true(rawpeer_reply(&p, &r, NULL));
        assert_int_equal(r.status, RR_STATUS_OK);
    }
    n = meta_name(meta, "/rrtest.Test/Echo", 17, 0, true);
    n += meta_name(meta + n, "/rrtest.Test/Nope", 17, 0, false);
    rawpeer_request_meta(&p, 4, meta, n, "x");
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.status, RR_STATUS_UNIMPLEMENTED);
    rawpeer_close(&p);
}

// Reserved keys: the channel refuses to send one; "RR-x" is not reserved.
static void
test_held_reserved_keys(void **state)
{
    fixture *fx = *state;
    rr_metadata md = {"rr-trace", (const uint8_t *) "v", 1};
    rr_call_opts o = {
        .struct_size = sizeof(o), .metadata = &md, .n_metadata = 1};
    outcome out;

    assert_int_equal(fx_call(fx, M_META, "rr-trace", &o, &out), RR_EINVAL);
    md.key = "RR-trace";
    assert_int_equal(fx_call(fx, M_META, "RR-trace", &o, &out), RR_OK);
    fx_wait(fx, &out);
    assert_int_equal(out.status, RR_STATUS_OK);
    assert_string_equal(out.text, "v");
}

// GOAWAY messages quoting peer bytes are UTF-8 (a bad preface byte).
static void
test_held_goaway_bad_preface_utf8(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rr_frame f;

    rawpeer_connect(&p, fx);
    rawpeer_send(&p, "\x89RRPC\r\n\xff\x00\x01\x00\x00", 12);
    while (rawpeer_frame(&p, &f)) {
        if (f.type == RR_FRAME_GOAWAY) {
            rr_goaway g;
            rr__goaway_parse(&f, &g);
            assert_int_equal(g.code, RR_GOAWAY_BAD_PREFACE);
            assert_true(
                rr__utf8_valid((const uint8_t *) g.message, g.message_len));
        }
    }
    rawpeer_close(&p);
}

// rr_call_on_cancel on a call already cancelled: runs from the loop,
// not inside; the callback frees the server, then completes the call.
typedef struct late {
    fixture *fx;
    rr_call *call;
    int runs;
    bool inside;
} late;

static late g_late;

static void
h_keep(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) req;
    (void) arg;
    g_late.call = call;
}

static void
late_cancel(rr_call *call, void *arg)
{
    late *l = arg;
    assert_false(l->inside);
    l->runs++;
    rr_server_free(l->fx->srv);
    l->fx->srv = NULL;
    rr_call_fail(call, RR_STATUS_ABORTED, "after free");
}

static void
test_held_on_cancel_late_frees_server(void **state)
{
    fixture *fx = *state;
    rawpeer p;

    memset(&g_late, 0, sizeof(g_late));
    g_late.fx = fx;
    fx->handlers[M_RELAY] = h_keep;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_RELAY].full_name, "x", 0);
    for (int i = 0; i < 1000 && g_late.call == NULL && !fx->guard_fired; i++)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_non_null(g_late.call);
    rawpeer_close(&p);
    for (int i = 0;
         i < 1000 && !rr_call_cancelled(g_late.call) && !fx->guard_fired; i++)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_true(rr_call_cancelled(g_late.call));
    g_late.inside = true;
    rr_call_on_cancel(g_late.call, late_cancel, &g_late);
    g_late.inside = false;
    assert_int_equal(g_late.runs, 0);
    for (int i = 0; i < 100 && g_late.runs == 0 && !fx->guard_fired; i++)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(g_late.runs, 1);
}

// Peer bytes quoted in UNIMPLEMENTED: surrogates, overlong forms, code
// points past U+10FFFF are ill-formed; DEL and C0 controls are escaped.
static void
test_held_method_name_quoting(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *name;
        size_t len;
        const char *want;
    } cases[] = {
        {"/x/\xed\xa0\x80", 6, "unknown method /x/\\xed\\xa0\\x80"},
        {"/x/\xc0\xaf", 5, "unknown method /x/\\xc0\\xaf"},
        {"/x/\xf4\x90\x80\x80", 7, "unknown method /x/\\xf4\\x90\\x80\\x80"},
        {"/x/\x01\n", 5, "unknown method /x/\\x01\\x0a"},
        {"/x/\xe2\x82", 5, "unknown method /x/\\xe2\\x82"},
    };
    rawpeer p;
    rawpeer_reply_t r;
    uint8_t meta[64];

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = meta_name(meta, cases[i].name, cases[i].len, 0, false);
        rawpeer_request_meta(&p, (uint32_t) i + 1, meta, n, "x");
        assert_true(rawpeer_reply(&p, &r, NULL));
        assert_int_equal(r.status, RR_STATUS_UNIMPLEMENTED);
        assert_string_equal(r.message, cases[i].want);
    }
    rawpeer_close(&p);
}

// A 4000-byte name of 0xff: the quote stays UTF-8 and within 1024 bytes.
static void
test_held_overlong_name_quote(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    static uint8_t meta[4100];
    static char name[4000];

    memset(name, 0xff, sizeof(name));
    name[0] = '/';
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    size_t n = meta_name(meta, name, sizeof(name), 0, false);
    rawpeer_request_meta(&p, 1, meta, n, "x");
    assert_true(rawpeer_reply(&p, &r, NULL));
    assert_int_equal(r.status, RR_STATUS_UNIMPLEMENTED);
    assert_true(r.message_len <= RR_STATUS_MESSAGE_MAX);
    assert_true(rr__utf8_valid((const uint8_t *) r.message, r.message_len));
    rawpeer_close(&p);
}

// After the peer's EOF the server sends no PING (section 8).
static void
test_held_no_ping_after_eof(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;
    rr_frame f;
    int pings = 0;

    rr_server_opts_init(&so);
    so.heartbeat_interval = 0.05;
    so.heartbeat_timeout = 5;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    wait_held(fx, 1);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    // up to the GOAWAY
    for (;;) {
        assert_true(rawpeer_frame(&p, &f));
        if (f.type == RR_FRAME_GOAWAY)
            break;
    }
    fx_run_for(fx, 0.4);
    reply_held(fx, 0);
    while (rawpeer_frame(&p, &f))
        pings += f.type == RR_FRAME_PING;
    assert_int_equal(pings, 0);
    rawpeer_close(&p);
}

// on_cancel on a cancelled call, then the call completed before the
// loop runs: the callback never runs (and touches nothing freed).
static int never_runs;
static void
never_cb(rr_call *call, void *arg)
{
    (void) call;
    (void) arg;
    never_runs++;
}

static void
test_held_on_cancel_then_complete(void **state)
{
    fixture *fx = *state;
    rawpeer p;

    memset(&g_late, 0, sizeof(g_late));
    never_runs = 0;
    fx->handlers[M_RELAY] = h_keep;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_RELAY].full_name, "x", 0);
    for (int i = 0; i < 1000 && g_late.call == NULL && !fx->guard_fired; i++)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_non_null(g_late.call);
    rawpeer_close(&p);
    for (int i = 0;
         i < 1000 && !rr_call_cancelled(g_late.call) && !fx->guard_fired; i++)
        ev_run(fx->loop, EVRUN_ONCE);
    rr_call_on_cancel(g_late.call, never_cb, NULL);
    rr_call_fail(g_late.call, RR_STATUS_ABORTED, "done");
    fx_run_for(fx, 0.05);
    assert_int_equal(never_runs, 0);
}

// Grace period over with a half-closed client: UNAVAILABLE, the handler
// cancelled; its late reply dropped.
static void
test_held_grace_end_half_closed(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    bool done = false, got = false;

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    wait_held(fx, 1);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    assert_int_equal(rr_server_shutdown(fx->srv, 0.2, shut_cb, &done), RR_OK);
    for (int i = 0; i < 10 && !p.eof; i++) {
        if (rawpeer_reply(&p, &r, NULL) && r.id == 1) {
            assert_int_equal(r.status, RR_STATUS_UNAVAILABLE);
            assert_string_equal(r.message,
                                "server shut down: grace period expired");
            got = true;
            break;
        }
    }
    assert_true(got);
    assert_int_equal(fx->cancels, 1);
    reply_held(fx, 0);
    fx_run_until(fx, &done);
    rawpeer_close(&p);
}

// ==== (suspected findings; all HELD: no failing case was found)

// A RESPONSE's meta_len never exceeds the client's MAX_METADATA_SIZE,
// also where the message's length needs a second varint byte (128+).
static void
h_fail_long(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) req;
    (void) arg;
    char msg[301];
    memset(msg, 'm', 300);
    msg[300] = '\0';
    rr_call_fail(call, RR_STATUS_NOT_FOUND, msg);
}

static void
test_held_response_meta_varint_edge(void **state)
{
    fixture *fx = *state;

    fx->handlers[M_UNSET] = h_fail_long;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    for (uint32_t limit = 126; limit <= 136; limit++) {
        rr_settings s;
        rawpeer p;
        rawpeer_reply_t r;

        rr__settings_init(&s);
        s.max_metadata_size = limit;
        rawpeer_connect_with(&p, fx, &s);
        rawpeer_request(&p, 1, test_methods[M_UNSET].full_name, "x", 0);
        assert_true(rawpeer_reply(&p, &r, NULL));
        assert_int_equal(r.status, RR_STATUS_NOT_FOUND);
        assert_true(r.meta_len <= limit);
        rawpeer_close(&p);
    }
}

// Cut between UTF-8 characters to fit the client's limit.
static void
h_fail_utf8(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) req;
    (void) arg;
    char msg[200];
    size_t k = 0;
    for (int i = 0; i < 40; i++) {
        memcpy(msg + k, "\xe2\x82\xac", 3);
        k += 3;
    }
    msg[k] = '\0';
    rr_call_fail(call, RR_STATUS_NOT_FOUND, msg);
}

static void
test_held_response_meta_cut_utf8(void **state)
{
    fixture *fx = *state;

    fx->handlers[M_UNSET] = h_fail_utf8;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    for (uint32_t limit = 4; limit <= 20; limit++) {
        rr_settings s;
        rawpeer p;
        rawpeer_reply_t r;

        rr__settings_init(&s);
        s.max_metadata_size = limit;
        rawpeer_connect_with(&p, fx, &s);
        rawpeer_request(&p, 1, test_methods[M_UNSET].full_name, "x", 0);
        assert_true(rawpeer_reply(&p, &r, NULL));
        assert_int_equal(r.status, RR_STATUS_NOT_FOUND);
        assert_true(r.meta_len <= limit);
        assert_true(rr__utf8_valid((const uint8_t *) r.message, r.message_len));
        rawpeer_close(&p);
    }
}

// A method name whose length is a valid but non-minimal varint is the
// same name to protobuf: the fast path and protobuf-c must agree.
static void
test_held_method_len_nonminimal_varint(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rawpeer_reply_t r;
    uint8_t meta[128];

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    for (int extra = 0; extra < 2; extra++) {
        size_t n = meta_name(meta, "/rrtest.Test/Echo", 17, 1, extra);
        rawpeer_request_meta(&p, 1 + (uint32_t) extra, meta, n, "x");
        assert_true(rawpeer_reply(&p, &r, NULL));
        assert_int_equal(r.status, RR_STATUS_OK);
    }
    rawpeer_close(&p);
}

// A half-closed client that still reads keeps its held call past the
// heartbeat timeout: output is not stuck, nothing is owed but the reply.
static void
test_held_half_close_call_outlives_heartbeat(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;
    rawpeer_reply_t r;
    bool got = false;

    rr_server_opts_init(&so);
    so.heartbeat_interval = 0.1;
    so.heartbeat_timeout = 0.2;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, test_methods[M_HOLD].full_name, "held", 0);
    assert_int_equal(shutdown(p.fd, SHUT_WR), 0);
    wait_held(fx, 1);
    fx_run_for(fx, 0.8);
    assert_int_equal(fx->cancels, 0);
    reply_held(fx, 0);
    for (int i = 0; i < 10 && !p.eof; i++)
        if (rawpeer_reply(&p, &r, NULL) && r.id == 1)
            got = true;
    assert_true(got);
    rawpeer_close(&p);
}

int
main(void)
{
#define T(name)                                                                \
    cmocka_unit_test_setup_teardown(name, fx_group_setup, fx_group_teardown)
    const struct CMUnitTest tests[] = {
        // A. held
        T(test_held_eof_mid_frame),
        T(test_held_client_goaway_then_eof),
        T(test_held_half_close_before_settings),
        T(test_held_half_close_during_shutdown),
        T(test_held_half_close_vs_reply_from_thread),
        T(test_held_half_close_over_high_water),
        T(test_held_long_and_repeated_names),
        T(test_held_reserved_keys),
        T(test_held_goaway_bad_preface_utf8),
        T(test_held_on_cancel_late_frees_server),
        T(test_held_method_name_quoting),
        T(test_held_overlong_name_quote),
        T(test_held_no_ping_after_eof),
        T(test_held_on_cancel_then_complete),
        T(test_held_grace_end_half_closed),
        // suspected, held
        T(test_held_response_meta_varint_edge),
        T(test_held_response_meta_cut_utf8),
        T(test_held_method_len_nonminimal_varint),
        T(test_held_half_close_call_outlives_heartbeat),
    };
#undef T
    return cmocka_run_group_tests_name("review", tests, NULL, NULL);
}
