// SPDX-License-Identifier: MIT
//
// test_faults.c -- what breaks servers in practice, done with raw sockets:
// garbage, oversized and out-of-order frames, silent peers (handshake and
// heartbeat), resets mid-call, GOAWAY with calls in flight, a server that
// restarts and a peer that stops reading (running out of descriptors is
// in test_listen.c).
// Each time the offender is dealt with and everyone else keeps going.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "codec/meta.h"
#include "codec/preface.h"
#include "server/server.h"

static void
test_faults_garbage_closes_only_the_offender(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

    fx_expect_service(fx);
    rawpeer_connect(&p, fx);
    rawpeer_send(&p, http, sizeof(http) - 1);
    rawpeer_expect_goaway(
        &p, RR_GOAWAY_BAD_PREFACE,
        "peer is not speaking rawrpc: byte 0 is 0x47 where the "
        "magic has 0x89 (received \"GET / HT\")");
    rawpeer_close(&p);
    fx_expect_service(fx);
}

static void
test_faults_hostile_length(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    const uint8_t huge[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 0, 0, 0, 1};

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_send(&p, huge, sizeof(huge));
    rawpeer_expect_goaway(&p, RR_GOAWAY_FRAME_TOO_LARGE,
                          "frame of 4294967295 bytes exceeds the 4194304-byte "
                          "limit");
    rawpeer_close(&p);
    fx_expect_service(fx);
}

static void
test_faults_handshake_timeout(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer silent, slow;

    rr_server_opts_init(&so);
    so.handshake_timeout = 0.1;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&silent, fx); // connects and says nothing
    rawpeer_connect(&slow, fx);
    rawpeer_send(&slow, rr__magic, 4); // half a preface, then nothing
    rawpeer_expect_goaway(&silent, RR_GOAWAY_HANDSHAKE_TIMEOUT, NULL);
    rawpeer_expect_goaway(&slow, RR_GOAWAY_HANDSHAKE_TIMEOUT, NULL);
    rawpeer_close(&silent);
    rawpeer_close(&slow);
    fx_expect_service(fx);
}

static void
test_faults_frame_order_rules(void **state)
{
    fixture *fx = *state;
    rawpeer p, q;
    rr_buf b;
    const uint8_t ping[RR_PING_SIZE] = {0};
    char msg[160];
    uint32_t id;

    // A frame before SETTINGS.
    rawpeer_connect(&p, fx);
    rr__buf_init(&b, 256);
    rr__preface_put(&b, 1);
    rr__frame_put_ping(&b, RR_FRAME_PING, ping);
    rawpeer_send(&p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
    rawpeer_expect_goaway(&p, RR_GOAWAY_PROTOCOL_ERROR,
                          "expected SETTINGS as the first frame, got PING");
    rawpeer_close(&p);

    // A duplicate call ID: the first call is answered, the second is a
    // protocol violation.
    rawpeer_connect(&q, fx);
    rawpeer_handshake(&q);
    rawpeer_request(&q, 5, "/rrtest.Test/Echo", "one", 0);
    assert_int_equal(rawpeer_response(&q, &id, msg, sizeof(msg)), RR_STATUS_OK);
    assert_int_equal(id, 5);
    rawpeer_request(&q, 5, "/rrtest.Test/Echo", "two", 0);
    rawpeer_expect_goaway(&q, RR_GOAWAY_PROTOCOL_ERROR,
                          "call ID 5 is not above the last call ID 5");
    rawpeer_close(&q);
    fx_expect_service(fx);
}

static void
test_faults_bad_calls_keep_the_connection(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    rr_buf b;
    char msg[160];
    uint32_t id;
    const uint8_t junk[] = {0xFF, 0xFF, 0xFF};
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    char method[] = "/rrtest.Test/Echo";

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rr__buf_init(&b, 1 << 16);

    // A payload that is not an Echo.
    meta.method = method;
    size_t mlen = protobuf_c_message_get_packed_size(&meta.base);
    uint8_t body[64];
    protobuf_c_message_pack(&meta.base, body);
    memcpy(body + mlen, junk, sizeof(junk));
    rr_frame f = {.length = (uint32_t) (mlen + sizeof(junk)),
                  .type = RR_FRAME_REQUEST,
                  .meta_len = (uint16_t) mlen,
                  .call_id = 1};
    uint8_t *dst;
    assert_int_equal(rr__frame_start(&b, &f, &dst), RR_OK);
    memcpy(dst, body, f.length);
    rr__buf_commit(&b, RR_FRAME_HEADER_SIZE + f.length);
    // An empty REQUEST: its metadata names no method.
    rr__frame_put(&b, RR_FRAME_REQUEST, 2, NULL, 0);
    rawpeer_send(&p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);

    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)),
                     RR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(id, 1);
    assert_string_equal(msg, "request does not parse as rrtest.Echo");
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)),
                     RR_STATUS_UNIMPLEMENTED);
    assert_int_equal(id, 2);

    // Garbled metadata, then metadata over the 8192-byte limit.
    rr__buf_init(&b, 1 << 16);
    f = (rr_frame){
        .length = 3, .type = RR_FRAME_REQUEST, .meta_len = 3, .call_id = 3};
    assert_int_equal(rr__frame_start(&b, &f, &dst), RR_OK);
    memcpy(dst, junk, 3);
    rr__buf_commit(&b, RR_FRAME_HEADER_SIZE + 3);
    f = (rr_frame){.length = 9000,
                   .type = RR_FRAME_REQUEST,
                   .meta_len = 9000,
                   .call_id = 4};
    assert_int_equal(rr__frame_start(&b, &f, &dst), RR_OK);
    memset(dst, 0, 9000);
    rr__buf_commit(&b, RR_FRAME_HEADER_SIZE + 9000);
    rawpeer_send(&p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)),
                     RR_STATUS_INVALID_ARGUMENT);
    assert_string_equal(msg, "request metadata does not parse");
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)),
                     RR_STATUS_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "request metadata of 9000 bytes exceeds the "
                             "8192-byte limit");

    // The connection is still good.
    rawpeer_request(&p, 10, "/rrtest.Test/Echo", "fine", 0);
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)), RR_STATUS_OK);
    assert_int_equal(id, 10);
    rawpeer_close(&p);
}

// Queues a REQUEST for Echo with text.
static void
put_echo(rr_buf *b, uint32_t id, const char *text)
{
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    Rrtest__Echo e = RRTEST__ECHO__INIT;
    char method[] = "/rrtest.Test/Echo";

    meta.method = method;
    e.text = (char *) text;
    assert_int_equal(
        rr__call_put(b, RR_FRAME_REQUEST, id, &meta.base, &e.base, 1 << 20),
        RR_OK);
}

// Frames cut anywhere and frames stuck together decode the same.  The
// stream goes out once in pieces (1 byte at a time through the preface
// and the first frames, then 7, then 1000, the server reading after each
// piece) and once in a single write.  The 100 KiB frame in the middle is
// read straight into its connection's buffer while most of it is
// missing, and completed from the shared read buffer after that.
static void
test_faults_split_and_stuck_frames(void **state)
{
    fixture *fx = *state;
    enum { BIG = 100 * 1024 };
    char *big = malloc(BIG + 1);
    rr_settings s;
    rr_buf b;

    assert_non_null(big);
    memset(big, 'x', BIG);
    big[BIG] = '\0';
    rr__settings_init(&s);
    rr__buf_init(&b, 1 << 20);
    assert_int_equal(rr__preface_put(&b, 1), RR_OK);
    assert_int_equal(rr__settings_put(&b, &s), RR_OK);
    put_echo(&b, 1, "first");
    put_echo(&b, 2, "second");
    put_echo(&b, 3, big);
    put_echo(&b, 4, "last");
    const uint8_t *d = rr__buf_data(&b);
    size_t len = rr__buf_size(&b);

    for (int round = 0; round < 2; round++) {
        rawpeer p;
        rawpeer_connect(&p, fx);
        for (size_t off = 0; off < len;) {
            size_t piece = round == 1   ? len
                           : off < 200  ? 1
                           : off < 2000 ? 7
                                        : 1000;
            piece = piece < len - off ? piece : len - off;
            rawpeer_send(&p, d + off, piece);
            off += piece;
            ev_run(fx->loop, EVRUN_ONCE);
        }
        for (uint32_t want = 1; want <= 4; want++) {
            rr_frame f;
            do {
                assert_true(rawpeer_frame(&p, &f));
            } while (f.type != RR_FRAME_RESPONSE);
            assert_int_equal(f.call_id, want);
            assert_int_equal(f.meta_len, 0); // OK
            Rrtest__Echo *e = rrtest__echo__unpack(
                NULL, rr__frame_payload_len(&f), rr__frame_payload(&f));
            assert_non_null(e);
            assert_int_equal(strlen(e->text),
                             want == 3 ? BIG : strlen(e->text));
            if (want == 1)
                assert_string_equal(e->text, "first");
            rrtest__echo__free_unpacked(e, NULL);
        }
        rawpeer_close(&p);
    }
    rr__buf_fini(&b);
    free(big);
    fx_expect_service(fx);
}

static void
test_faults_connection_frames(void **state)
{
    fixture *fx = *state;
    rawpeer p, q;
    rr_buf b;
    rr_frame f;
    char msg[160];
    uint32_t id;
    const uint8_t ping[RR_PING_SIZE] = {9, 8, 7, 6, 5, 4, 3, 2};
    const uint8_t ext[] = {0, 0, 0, 3, 0xC3, 0xFF, 0,  7,
                           0, 0, 0, 5, 'x',  'y',  'z'};

    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    // An extension frame is skipped whole; a CANCEL for a call that is not
    // in flight is ignored; a PING is answered with its own bytes.
    rawpeer_send(&p, ext, sizeof(ext));
    rr__buf_init(&b, 256);
    rr__frame_put_cancel(&b, 42);
    rr__frame_put_ping(&b, RR_FRAME_PING, ping);
    rawpeer_send(&p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
    do {
        assert_true(rawpeer_frame(&p, &f));
    } while (f.type != RR_FRAME_PONG);
    assert_memory_equal(f.body, ping, RR_PING_SIZE);
    rawpeer_request(&p, 1, "/rrtest.Test/Echo", "after", 0);
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)), RR_STATUS_OK);
    rawpeer_close(&p);

    // A second SETTINGS is a protocol error.
    rawpeer_connect(&q, fx);
    rawpeer_handshake(&q);
    rr_settings s;
    rr__settings_init(&s);
    rr__buf_init(&b, 256);
    rr__settings_put(&b, &s);
    rawpeer_send(&q, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
    rawpeer_expect_goaway(&q, RR_GOAWAY_PROTOCOL_ERROR,
                          "a second SETTINGS frame");
    rawpeer_close(&q);
}

static void
test_faults_ping_flood(void **state)
{
    fixture *fx = *state;
    rawpeer p, q;
    rr_buf b;
    const uint8_t ping[RR_PING_SIZE] = {0};
    char msg[160];
    uint32_t id;

    // 100 PINGs at once are answered and the connection stays...
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rr__buf_init(&b, 1 << 16);
    for (int i = 0; i < 100; i++)
        rr__frame_put_ping(&b, RR_FRAME_PING, ping);
    rawpeer_send(&p, rr__buf_data(&b), rr__buf_size(&b));
    rawpeer_request(&p, 1, "/rrtest.Test/Echo", "still served", 0);
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)), RR_STATUS_OK);
    rawpeer_close(&p);

    // ... one more within the window is a flood.
    rawpeer_connect(&q, fx);
    rawpeer_handshake(&q);
    rr__frame_put_ping(&b, RR_FRAME_PING, ping);
    rawpeer_send(&q, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
    rawpeer_expect_goaway(&q, RR_GOAWAY_ENHANCE_YOUR_CALM,
                          "more than 100 PINGs within 10 s");
    rawpeer_close(&q);
    fx_expect_service(fx);
}

static void
test_faults_too_many_calls_in_flight(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;
    char msg[160];
    uint32_t id;

    rr_server_opts_init(&so);
    so.max_concurrent_calls = 2;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    rawpeer_request(&p, 1, "/rrtest.Test/Hold", "a", 0);
    rawpeer_request(&p, 2, "/rrtest.Test/Hold", "b", 0);
    rawpeer_request(&p, 3, "/rrtest.Test/Hold", "c", 0);
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)),
                     RR_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(id, 3);
    assert_string_equal(msg, "2 calls in flight reach the 2-call limit");
    assert_int_equal(fx->n_held, 2);
    rawpeer_close(&p);
}

// Spins for 20 ms of wall-clock time: a handler hogging the loop.
static void
h_spin(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) arg;
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double) (t.tv_sec - t0.tv_sec) * 1e3 +
                 (double) (t.tv_nsec - t0.tv_nsec) / 1e6 <
             20.0);
    rr_call_reply(call, req);
}

static void
test_faults_expired_before_dispatch(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    char msg[160];
    uint32_t id;
    rr_buf b;

    fx->handlers[M_RELAY] = h_spin;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    // Both requests in one write, so one wake-up reads both: the spinning
    // handler uses up the second call's 5 ms before it is dispatched.
    Rawrpc__V1__RequestMeta m1 = RAWRPC__V1__REQUEST_META__INIT;
    Rawrpc__V1__RequestMeta m2 = RAWRPC__V1__REQUEST_META__INIT;
    Rrtest__Echo e = RRTEST__ECHO__INIT;
    char relay[] = "/rrtest.Test/Relay", hold[] = "/rrtest.Test/Hold";
    m1.method = relay;
    m2.method = hold;
    m2.timeout_us = 5000;
    rr__buf_init(&b, 4096);
    rr__call_put(&b, RR_FRAME_REQUEST, 1, &m1.base, &e.base, 1 << 20);
    rr__call_put(&b, RR_FRAME_REQUEST, 2, &m2.base, &e.base, 1 << 20);
    rawpeer_send(&p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);

    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)), RR_STATUS_OK);
    assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)),
                     RR_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(id, 2);
    assert_string_equal(msg, "deadline passed before dispatch");
    assert_int_equal(fx->n_held, 0); // the handler never ran
    rawpeer_close(&p);
}

// A test-made server that accepts, optionally handshakes, then behaves as
// told: stays silent, or resets on the first bytes it gets.
typedef struct fake_server {
    fixture *fx;
    int lfd;
    ev_io accept_io;
    rawpeer conn;
    bool accepted;
    bool handshake;
    const uint8_t *reply; // sent once the client's first bytes arrive
    size_t reply_len;
    ev_io data_io;
} fake_server;

static void
fake_reply_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    fake_server *fs = w->data;

    ev_io_stop(loop, w);
    rawpeer_send(&fs->conn, fs->reply, fs->reply_len);
}

static void
fake_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    fake_server *fs = w->data;
    int fd = accept(fs->lfd, NULL, NULL);

    assert_true(fd >= 0);
    ev_io_stop(loop, w);
    memset(&fs->conn, 0, sizeof(fs->conn));
    fs->conn.fx = fs->fx;
    fs->conn.fd = fd;
    rr__buf_init(&fs->conn.in, 1 << 20);
    fs->accepted = true;
    if (fs->handshake)
        rawpeer_handshake(&fs->conn);
    if (fs->reply != NULL) {
        ev_io_init(&fs->data_io, fake_reply_cb, fd, EV_READ);
        fs->data_io.data = fs;
        ev_io_start(loop, &fs->data_io);
    }
}

static void
fake_data_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    fake_server *fs = w->data;
    struct linger lg = {1, 0};

    // SO_LINGER 0: close sends RST, not FIN.
    setsockopt(fs->conn.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    ev_io_stop(loop, w);
    close(fs->conn.fd);
    fs->conn.fd = -1;
}

static void
fake_start(fake_server *fs, fixture *fx, char *target, size_t n)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);

    fs->fx = fx;
    fs->accepted = false;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fs->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(fs->lfd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(listen(fs->lfd, 8), 0);
    getsockname(fs->lfd, (struct sockaddr *) &sin, &len);
    snprintf(target, n, "127.0.0.1:%u", (unsigned) ntohs(sin.sin_port));
    ev_io_init(&fs->accept_io, fake_accept_cb, fs->lfd, EV_READ);
    fs->accept_io.data = fs;
    ev_io_start(fx->loop, &fs->accept_io);
}

static void
fake_stop(fake_server *fs)
{
    ev_io_stop(fs->fx->loop, &fs->accept_io);
    if (fs->accepted && fs->reply != NULL)
        ev_io_stop(fs->fx->loop, &fs->data_io);
    close(fs->lfd);
    if (fs->accepted && fs->conn.fd >= 0)
        close(fs->conn.fd);
    if (fs->accepted)
        rr__buf_fini(&fs->conn.in);
}

// A channel with copts calls a fake server; the call must fail with
// UNAVAILABLE and a message containing why.
static void
expect_fake_server_failure(fixture *fx, bool handshake, const uint8_t *reply,
                           size_t reply_len, const rr_channel_opts *copts,
                           const char *why)
{
    fake_server fs = {
        .handshake = handshake, .reply = reply, .reply_len = reply_len};
    char target[64];
    rr_channel *ch;
    outcome o = {0};
    Rrtest__Echo req = RRTEST__ECHO__INIT;

    fake_start(&fs, fx, target, sizeof(target));
    assert_int_equal(rr_channel_new(&ch, fx->loop, target, copts), RR_OK);
    rr_channel_call(ch, &test_methods[M_ECHO], &req.base, NULL, result_cb, &o,
                    NULL);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_UNAVAILABLE);
    assert_non_null(strstr(o.message, why));
    rr_channel_free(ch);
    fake_stop(&fs);
}

static void
test_faults_client_heartbeat_finds_silent_server(void **state)
{
    rr_channel_opts co;

    rr_channel_opts_init(&co);
    co.heartbeat_interval = 0.05;
    co.heartbeat_timeout = 0.1;
    // The server handshakes and then never says another word, nor closes:
    // a half-open connection.  Only the heartbeat can tell.
    expect_fake_server_failure(*state, true, NULL, 0, &co, "after a PING");
}

static void
test_faults_client_handshake_timeout(void **state)
{
    rr_channel_opts co;

    rr_channel_opts_init(&co);
    co.connect_timeout = 0.1;
    // Accepts the connection, never sends a preface.
    expect_fake_server_failure(*state, false, NULL, 0, &co,
                               "did not complete the handshake");
}

static void
test_faults_client_rejects_server_violations(void **state)
{
    // A server that sends a REQUEST, and one that answers a call ID the
    // client never sent: both are protocol errors that close the
    // connection; the call fails with UNAVAILABLE naming the rule.
    const uint8_t request[] = {0, 0, 0, 0, RR_FRAME_REQUEST, 0, 0, 0,
                               0, 0, 0, 1};
    const uint8_t response[] = {0, 0, 0, 0, RR_FRAME_RESPONSE, 0, 0, 0,
                                0, 0, 0, 99};

    expect_fake_server_failure(*state, true, request, sizeof(request), NULL,
                               "a server sent a REQUEST frame");
    expect_fake_server_failure(*state, true, response, sizeof(response), NULL,
                               "response to call ID 99, which was never "
                               "sent");
}

static void
test_faults_server_heartbeat_finds_silent_client(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;
    rr_frame f;

    rr_server_opts_init(&so);
    so.heartbeat_interval = 0.05;
    so.heartbeat_timeout = 0.1;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    rawpeer_handshake(&p);
    do { // the server pings our silence ...
        assert_true(rawpeer_frame(&p, &f));
    } while (f.type != RR_FRAME_PING);
    // ... and gives up on us when we do not answer.
    rawpeer_expect_goaway(&p, RR_GOAWAY_HEARTBEAT_TIMEOUT, NULL);
    rawpeer_close(&p);
    fx_expect_service(fx);
}

static void
test_faults_reset_mid_call(void **state)
{
    fixture *fx = *state;
    fake_server fs = {.handshake = true};
    char target[64];
    rr_channel *ch;
    outcome o = {0};
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    ev_io data_io;

    fake_start(&fs, fx, target, sizeof(target));
    assert_int_equal(rr_channel_new(&ch, fx->loop, target, NULL), RR_OK);
    rr_channel_call(ch, &test_methods[M_ECHO], &req.base, NULL, result_cb, &o,
                    NULL);
    fx_run_until(fx, &fs.accepted);
    ev_io_init(&data_io, fake_data_cb, fs.conn.fd, EV_READ);
    data_io.data = &fs;
    ev_io_start(fx->loop, &data_io);
    fx_wait(fx, &o);
    ev_io_stop(fx->loop, &data_io);
    assert_int_equal(o.status, RR_STATUS_UNAVAILABLE);
    rr_channel_free(ch);
    fake_stop(&fs);
}

static void
shutdown_done(rr_server *srv, void *arg)
{
    (void) srv;
    *(bool *) arg = true;
}

static int echo_runs;

static void
h_count_echo(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) arg;
    echo_runs++;
    rr_call_reply(call, req);
}

static void
test_faults_goaway_with_calls_in_flight(void **state)
{
    fixture *fx = *state;
    outcome held[3], crossed;
    bool done = false;
    rr_server *next;
    char addr[64];

    for (int i = 0; i < 3; i++)
        fx_call(fx, M_HOLD, "held", NULL, &held[i]);
    while (fx->n_held < 3 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);

    // GOAWAY goes out with last call 3.  A call made now crosses it on the
    // wire: the old server never runs it, and the channel sends it again
    // on a new connection, to the server that took over the port.
    assert_int_equal(rr_server_shutdown(fx->srv, 5.0, shutdown_done, &done),
                     RR_OK);
    assert_int_equal(rr_server_shutdown(fx->srv, 5.0, NULL, NULL), RR_EINVAL);
    fx->handlers[M_ECHO] = h_count_echo;
    echo_runs = 0;
    assert_int_equal(rr_server_new(&next, fx->loop, NULL), RR_OK);
    assert_int_equal(rr_server_add_service(next, &rrtest__test__descriptor,
                                           fx->handlers, fx),
                     RR_OK);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned) fx->port);
    assert_int_equal(rr_server_listen(next, addr), RR_OK);
    fx_call(fx, M_ECHO, "crossed", NULL, &crossed);
    fx_wait(fx, &crossed);
    assert_int_equal(crossed.status, RR_STATUS_OK);
    assert_string_equal(crossed.text, "crossed");
    assert_int_equal(echo_runs, 1); // run once, by the new server

    // The calls in flight on the old server finish normally.
    for (int i = 0; i < 3; i++) {
        rr_call_reply(fx->held[i], &fx->held_req[i]->base);
        fx->held[i] = NULL;
    }
    for (int i = 0; i < 3; i++) {
        fx_wait(fx, &held[i]);
        assert_int_equal(held[i].status, RR_STATUS_OK);
    }
    fx_run_until(fx, &done); // every connection closed cleanly
    assert_int_equal(fx->n_held, 3);
    rr_server_free(next);
}

static void
test_faults_shutdown_without_connections(void **state)
{
    fixture *fx = *state;
    bool done = false;

    // No call was made: the channel never connected.
    assert_int_equal(rr_server_shutdown(fx->srv, 5.0, shutdown_done, &done),
                     RR_OK);
    assert_false(done); // never before the call returns
    fx_run_until(fx, &done);
}

static void
test_faults_grace_period_cancels_stragglers(void **state)
{
    fixture *fx = *state;
    outcome o;
    bool done = false;

    fx_call(fx, M_HOLD, "never answered", NULL, &o);
    while (fx->n_held < 1 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(rr_server_shutdown(fx->srv, 0.05, shutdown_done, &done),
                     RR_OK);
    fx_wait(fx, &o);
    // UNAVAILABLE, as gRPC answers at shutdown: CANCELLED is for calls
    // the client cancelled (PROTOCOL.md 5.3).
    assert_int_equal(o.status, RR_STATUS_UNAVAILABLE);
    assert_string_equal(o.message, "server shut down: grace period expired");
    assert_int_equal(fx->cancels, 1);
    fx_run_until(fx, &done);
}

// Collects the channel's "reconnecting in N s" lines.
typedef struct backoff_log {
    double delays[16];
    int n;
} backoff_log;

static void
log_backoff(rr_log_level level, const char *msg, void *arg)
{
    (void) level;
    backoff_log *bl = arg;
    const char *p = strstr(msg, "reconnecting in ");

    if (p != NULL && bl->n < 16)
        bl->delays[bl->n++] = strtod(p + strlen("reconnecting in "), NULL);
}

static void
test_faults_reconnect_with_backoff(void **state)
{
    fixture *fx = *state;
    rr_channel_opts co;
    backoff_log bl = {.n = 0};
    outcome o;
    rr_call_opts wait = {.wait_for_ready = true, .timeout = 20.0};
    char addr[64];

    rr_channel_opts_init(&co);
    co.backoff_initial = 0.02;
    co.backoff_multiplier = 2.0;
    co.backoff_jitter = 0.0; // exact delays, to check the sequence
    assert_int_equal(fx_restart(fx, NULL, &co), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned) fx->port);
    fx_expect_service(fx);

    // The server goes away; a call waits for it to come back.
    rr_server_free(fx->srv);
    fx->srv = NULL;
    // Once the channel has seen the loss (a call already on the dying
    // connection would rightly fail: it may have been sent).
    while (rr_channel_connected(fx->ch) && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    rr_log_set(log_backoff, &bl, RR_LOG_INFO);
    fx_call(fx, M_ECHO, "back", &wait, &o);
    while (bl.n < 4 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_true(bl.n >= 4);
    assert_true(bl.delays[0] > 0.019 && bl.delays[0] < 0.021);
    assert_true(bl.delays[1] > 0.039 && bl.delays[1] < 0.041);
    assert_true(bl.delays[2] > 0.079 && bl.delays[2] < 0.081);
    assert_int_equal(o.runs, 0);

    // The server restarts on the same port: the waiting call goes through.
    assert_int_equal(rr_server_new(&fx->srv, fx->loop, NULL), RR_OK);
    assert_int_equal(rr_server_add_service(fx->srv, &rrtest__test__descriptor,
                                           fx->handlers, fx),
                     RR_OK);
    assert_int_equal(rr_server_listen(fx->srv, addr), RR_OK);
    fx_wait(fx, &o);
    rr_log_set(NULL, NULL, RR_LOG_OFF);
    assert_int_equal(o.status, RR_STATUS_OK);
    assert_string_equal(o.text, "back");
}

static void
test_faults_slow_reader_is_bounded(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;
    enum { N = 300 };
    const size_t high = (size_t) 256 * 1024;
    size_t peak = 0;
    char msg[160];
    uint32_t id;

    rr_server_opts_init(&so);
    so.out_high_water = high;
    so.out_low_water = (size_t) 64 * 1024;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    rawpeer_connect(&p, fx);
    ev_io_stop(fx->loop, &p.io); // we stop reading
    rawpeer_handshake(&p);
    for (uint32_t i = 1; i <= N; i++)
        rawpeer_request(&p, i, "/rrtest.Test/Big", "65536", 0);
    // 300 replies of 64 KiB = 19 MiB: far more than the kernel buffers.
    for (int i = 0; i < 50; i++) {
        fx_run_for(fx, 0.002);
        size_t now = rr__server_buffered(fx->srv);
        peak = now > peak ? now : peak;
    }
    assert_true(peak > 0);
    assert_true(peak <= high + (size_t) 70 * 1024); // one reply past the mark
    fx_expect_service(fx); // others are served meanwhile

    // Reading again, every reply arrives.
    ev_io_start(fx->loop, &p.io);
    for (int i = 0; i < N; i++) {
        assert_int_equal(rawpeer_response(&p, &id, msg, sizeof(msg)),
                         RR_STATUS_OK);
        assert_int_equal(id, (uint32_t) i + 1);
    }
    rawpeer_close(&p);
}

int
main(void)
{
#define T(name)                                                                \
    cmocka_unit_test_setup_teardown(name, fx_group_setup, fx_group_teardown)
    const struct CMUnitTest tests[] = {
        T(test_faults_garbage_closes_only_the_offender),
        T(test_faults_hostile_length),
        T(test_faults_handshake_timeout),
        T(test_faults_frame_order_rules),
        T(test_faults_bad_calls_keep_the_connection),
        T(test_faults_split_and_stuck_frames),
        T(test_faults_connection_frames),
        T(test_faults_ping_flood),
        T(test_faults_too_many_calls_in_flight),
        T(test_faults_expired_before_dispatch),
        T(test_faults_client_heartbeat_finds_silent_server),
        T(test_faults_client_handshake_timeout),
        T(test_faults_client_rejects_server_violations),
        T(test_faults_server_heartbeat_finds_silent_client),
        T(test_faults_reset_mid_call),
        T(test_faults_goaway_with_calls_in_flight),
        T(test_faults_shutdown_without_connections),
        T(test_faults_grace_period_cancels_stragglers),
        T(test_faults_reconnect_with_backoff),
        T(test_faults_slow_reader_is_bounded),
    };
#undef T
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
