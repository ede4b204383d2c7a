// SPDX-License-Identifier: MIT
//
// harness.c -- shared fixture of the runtime tests; see harness.h.

#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "codec/byteorder.h"
#include "codec/meta.h"
#include "codec/preface.h"

const rr_method test_methods[8] = {
    {"/rrtest.Test/Echo", &rrtest__echo__descriptor, &rrtest__echo__descriptor},
    {"/rrtest.Test/Hold", &rrtest__echo__descriptor, &rrtest__echo__descriptor},
    {"/rrtest.Test/Fail", &rrtest__echo__descriptor, &rrtest__echo__descriptor},
    {"/rrtest.Test/Big", &rrtest__echo__descriptor, &rrtest__echo__descriptor},
    {"/rrtest.Test/Meta", &rrtest__echo__descriptor, &rrtest__echo__descriptor},
    {"/rrtest.Test/Thread", &rrtest__echo__descriptor,
     &rrtest__echo__descriptor},
    {"/rrtest.Test/Relay", &rrtest__echo__descriptor,
     &rrtest__echo__descriptor},
    {"/rrtest.Test/Unset", &rrtest__echo__descriptor,
     &rrtest__echo__descriptor},
};

int
fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; // the DIR's own descriptor
}

void
result_cb(const rr_result *res, void *arg)
{
    outcome *o = arg;

    o->runs++;
    o->status = res->status;
    snprintf(o->message, sizeof(o->message), "%s", res->message);
    if (res->reply != NULL) {
        const Rrtest__Echo *e = (const Rrtest__Echo *) res->reply;
        snprintf(o->text, sizeof(o->text), "%s", e->text);
        o->data_len = e->data.len;
    }
}

// ------------------------------------------------------------- handlers

static void
h_echo(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) arg;
    rr_call_reply(call, req);
}

static void
h_hold_cancelled(rr_call *call, void *arg)
{
    (void) call;
    fixture *fx = arg;
    fx->cancels++;
}

static void
h_hold(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fixture *fx = arg;
    assert_true(fx->n_held < MAX_HELD);
    fx->held_req[fx->n_held] = (const Rrtest__Echo *) req;
    fx->held[fx->n_held++] = call;
    rr_call_on_cancel(call, h_hold_cancelled, fx);
}

static void
h_fail(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) req;
    (void) arg;
    rr_call_fail(call, RR_STATUS_NOT_FOUND, "no such key");
}

// Replies with a data field of atoi-free length given in text.
static void
h_big(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) arg;
    const Rrtest__Echo *in = (const Rrtest__Echo *) req;
    Rrtest__Echo out = RRTEST__ECHO__INIT;
    size_t n = (size_t) strtoul(in->text, NULL, 10);
    uint8_t *data = calloc(1, n > 0 ? n : 1);

    assert_non_null(data);
    out.data.data = data;
    out.data.len = n;
    rr_call_reply(call, &out.base);
    free(data);
}

// Replies with the request metadata value under the key given in text.
static void
h_meta(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) arg;
    const Rrtest__Echo *in = (const Rrtest__Echo *) req;
    Rrtest__Echo out = RRTEST__ECHO__INIT;
    char text[64] = "(absent)";
    size_t len;
    const uint8_t *v = rr_call_metadata(call, in->text, &len);

    if (v != NULL)
        snprintf(text, sizeof(text), "%.*s", (int) len, (const char *) v);
    out.text = text;
    rr_call_reply(call, &out.base);
}

int
fx_call(fixture *fx, int m, const char *text, const rr_call_opts *o,
        outcome *out)
{
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    char buf[64];

    snprintf(buf, sizeof(buf), "%s", text);
    req.text = buf;
    memset(out, 0, sizeof(*out));
    return rr_channel_call(fx->ch, &test_methods[m], &req.base, o, result_cb,
                           out, NULL);
}

// --------------------------------------------------------------- fixture

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    fixture *fx = (fixture *) (void *) ((char *) w - offsetof(fixture, guard));
    fx->guard_fired = true;
    ev_break(loop, EVBREAK_ALL);
}

static void
quiet_log(rr_log_level level, const char *msg, void *arg)
{
    (void) level;
    (void) msg;
    (void) arg;
}

int
fx_setup(fixture *fx, double guard, const rr_server_opts *sopts,
         const rr_channel_opts *copts)
{
    memset(fx, 0, sizeof(*fx));
    if (getenv("RR_TEST_LOG") == NULL)
        rr_log_set(quiet_log, NULL, RR_LOG_OFF);
    else
        rr_log_set(NULL, NULL, RR_LOG_DEBUG);
    fx->fds_at_start = fd_count();
    fx->loop = ev_loop_new(EVFLAG_AUTO);
    if (fx->loop == NULL)
        return -1;
    ev_timer_init(&fx->guard, guard_cb, guard, 0.);
    ev_timer_start(fx->loop, &fx->guard);
    ev_unref(fx->loop); // the guard alone does not keep the loop alive

    fx->handlers[M_ECHO] = h_echo;
    fx->handlers[M_HOLD] = h_hold;
    fx->handlers[M_FAIL] = h_fail;
    fx->handlers[M_BIG] = h_big;
    fx->handlers[M_META] = h_meta;
    fx->handlers[M_THREAD] = h_echo; // tests replace what they need
    fx->handlers[M_RELAY] = h_echo;
    fx->handlers[M_UNSET] = NULL; // registered without a handler
    return fx_restart(fx, sopts, copts);
}

int
fx_restart(fixture *fx, const rr_server_opts *sopts,
           const rr_channel_opts *copts)
{
    rr_channel_free(fx->ch);
    rr_server_free(fx->srv);
    fx->ch = NULL;
    if (rr_server_new(&fx->srv, fx->loop, sopts) != RR_OK)
        return -1;
    if (rr_server_add_service(fx->srv, &rrtest__test__descriptor, fx->handlers,
                              fx) != RR_OK ||
        rr_server_listen(fx->srv, "127.0.0.1:0") != RR_OK)
        return -1;
    fx->port = rr_server_port(fx->srv);
    snprintf(fx->target, sizeof(fx->target), "127.0.0.1:%u",
             (unsigned) fx->port);
    return rr_channel_new(&fx->ch, fx->loop, fx->target, copts) == RR_OK ? 0
                                                                         : -1;
}

int
fx_group_setup(void **state)
{
    fixture *fx = malloc(sizeof(*fx));

    if (fx == NULL || fx_setup(fx, 30.0, NULL, NULL) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

int
fx_group_teardown(void **state)
{
    fixture *fx = *state;

    fx_teardown(fx);
    free(fx);
    return 0;
}

void
fx_teardown(fixture *fx)
{
    // Calls a test left held are completed so their memory goes.
    for (size_t i = 0; i < fx->n_held; i++) {
        if (fx->held[i] != NULL)
            rr_call_fail(fx->held[i], RR_STATUS_ABORTED, "test over");
    }
    rr_channel_free(fx->ch);
    rr_server_free(fx->srv);
    // Let closes and deferred frees run.
    ev_ref(fx->loop);
    ev_timer_stop(fx->loop, &fx->guard);
    ev_run(fx->loop, EVRUN_NOWAIT);
    ev_loop_destroy(fx->loop);
    rr_log_set(NULL, NULL, RR_LOG_WARN);
    assert_int_equal(fd_count(), fx->fds_at_start);
}

void
fx_run_until(fixture *fx, const bool *flag)
{
    while (!*flag && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    if (fx->guard_fired)
        fail_msg("guard timer fired: the awaited event never happened");
}

void
fx_wait(fixture *fx, outcome *o)
{
    while (o->runs == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    if (fx->guard_fired)
        fail_msg("guard timer fired while waiting for a call");
    assert_int_equal(o->runs, 1);
}

static void
flag_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    *(bool *) w->data = true;
}

void
fx_flag_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    *(bool *) w->data = true;
}

void
fx_run_for(fixture *fx, double seconds)
{
    ev_timer t;
    bool done = false;

    ev_timer_init(&t, flag_cb, seconds, 0.);
    t.data = &done;
    ev_timer_start(fx->loop, &t);
    fx_run_until(fx, &done);
    ev_timer_stop(fx->loop, &t);
}

// ------------------------------------------------------------ raw peers

static void
rawpeer_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    rawpeer *p = (rawpeer *) (void *) ((char *) w - offsetof(rawpeer, io));
    uint8_t *dst;

    assert_int_equal(rr__buf_reserve(&p->in, 65536, &dst), RR_OK);
    ssize_t n = recv(p->fd, dst, 65536, 0);
    if (n > 0) {
        rr__buf_commit(&p->in, (size_t) n);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        p->eof = true;
        ev_io_stop(loop, w);
    }
    ev_break(loop, EVBREAK_ONE);
}

void
rawpeer_connect(rawpeer *p, fixture *fx)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(fx->port)};

    memset(p, 0, sizeof(*p));
    p->fx = fx;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->fd >= 0);
    assert_int_equal(connect(p->fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    rr__buf_init(&p->in, (size_t) 64 * 1024 * 1024);
    ev_io_init(&p->io, rawpeer_io_cb, p->fd, EV_READ);
    ev_io_start(fx->loop, &p->io);
}

static void
accept_ready_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    ev_io_stop(loop, w);
}

void
rawpeer_accept(rawpeer *p, fixture *fx, int listen_fd)
{
    ev_io w;

    memset(p, 0, sizeof(*p));
    p->fx = fx;
    ev_io_init(&w, accept_ready_cb, listen_fd, EV_READ);
    for (;;) {
        p->fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (p->fd >= 0)
            break;
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
        if (fx->guard_fired)
            fail_msg("guard timer fired while waiting for a connection");
        ev_io_start(fx->loop, &w);
        ev_run(fx->loop, EVRUN_ONCE);
        ev_io_stop(fx->loop, &w);
    }
    rr__buf_init(&p->in, (size_t) 64 * 1024 * 1024);
    ev_io_init(&p->io, rawpeer_io_cb, p->fd, EV_READ);
    ev_io_start(fx->loop, &p->io);
}

int
rawpeer_listen(uint16_t *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

void
rawpeer_send(rawpeer *p, const void *buf, size_t len)
{
    const uint8_t *b = buf;

    while (len > 0) {
        ssize_t n = send(p->fd, b, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        b += n;
        len -= (size_t) n;
    }
}

void
rawpeer_handshake(rawpeer *p)
{
    rr_buf b;
    rr_settings s;

    rr__settings_init(&s);
    rr__buf_init(&b, 1024);
    assert_int_equal(rr__preface_put(&b, 1), RR_OK);
    assert_int_equal(rr__settings_put(&b, &s), RR_OK);
    rawpeer_send(p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
}

bool
rawpeer_frame(rawpeer *p, rr_frame *f)
{
    for (;;) {
        const uint8_t *d = rr__buf_data(&p->in);
        size_t len = rr__buf_size(&p->in);
        if (len >= RR_PREFACE_SIZE && memcmp(d, rr__magic, 8) == 0) {
            rr__buf_consume(&p->in, RR_PREFACE_SIZE);
            continue;
        }
        ssize_t n = rr__frame_decode(d, len, UINT32_MAX, f);
        if (n > 0) {
            // Consuming moves only the head: f's body stays readable until
            // the next read into the buffer, in the next call.
            rr__buf_consume(&p->in, (size_t) n);
            return true;
        }
        assert_true(n == 0);
        if (p->eof)
            return false;
        if (p->fx->guard_fired)
            fail_msg("guard timer fired while waiting for a frame");
        ev_run(p->fx->loop, EVRUN_ONCE);
    }
}

void
rawpeer_wait_eof(rawpeer *p)
{
    rr_frame f;

    while (rawpeer_frame(p, &f))
        ;
}

void
rawpeer_close(rawpeer *p)
{
    if (p->fd < 0)
        return;
    ev_io_stop(p->fx->loop, &p->io);
    close(p->fd);
    p->fd = -1;
    rr__buf_fini(&p->in);
}

// Sends a REQUEST for method m with text, deadline budget timeout_us.
void
rawpeer_request(rawpeer *p, uint32_t id, const char *method, const char *text,
                uint64_t timeout_us)
{
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    Rrtest__Echo e = RRTEST__ECHO__INIT;
    char mbuf[64], tbuf[64];
    rr_buf b;

    snprintf(mbuf, sizeof(mbuf), "%s", method);
    snprintf(tbuf, sizeof(tbuf), "%s", text);
    meta.method = mbuf;
    meta.timeout_us = timeout_us;
    e.text = tbuf;
    rr__buf_init(&b, 4096);
    assert_int_equal(
        rr__call_put(&b, RR_FRAME_REQUEST, id, &meta.base, &e.base, 1 << 20),
        RR_OK);
    rawpeer_send(p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
}

// Reads frames until a RESPONSE; returns its status, message in msg.
rr_status
rawpeer_response(rawpeer *p, uint32_t *id, char *msg, size_t msgsz)
{
    rr_frame f;
    ProtobufCMessage *m;

    for (;;) {
        assert_true(rawpeer_frame(p, &f));
        if (f.type == RR_FRAME_SETTINGS || f.type == RR_FRAME_PING ||
            f.type == RR_FRAME_PONG)
            continue;
        assert_int_equal(f.type, RR_FRAME_RESPONSE);
        break;
    }
    *id = f.call_id;
    assert_int_equal(
        rr__meta_unpack(&rawrpc__v1__response_meta__descriptor, &f, NULL, &m),
        RR_OK);
    Rawrpc__V1__ResponseMeta *rm = (Rawrpc__V1__ResponseMeta *) m;
    rr_status st = (rr_status) rm->status;
    snprintf(msg, msgsz, "%s", rm->message);
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

// Reads frames until a GOAWAY, checks its code and message, then EOF.
void
rawpeer_expect_goaway(rawpeer *p, uint32_t code, const char *msg)
{
    rr_frame f;
    rr_goaway g;

    do {
        assert_true(rawpeer_frame(p, &f));
    } while (f.type != RR_FRAME_GOAWAY);
    rr__goaway_parse(&f, &g);
    assert_int_equal(g.code, code);
    if (msg != NULL) {
        char got[256];
        snprintf(got, sizeof(got), "%.*s", (int) g.message_len, g.message);
        assert_string_equal(got, msg);
    }
    rawpeer_wait_eof(p);
}

// A well-behaved client keeps getting answers.
void
fx_expect_service(fixture *fx)
{
    outcome o;

    assert_int_equal(fx_call(fx, M_ECHO, "alive", NULL, &o), RR_OK);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_OK);
    assert_string_equal(o.text, "alive");
}

void
rawpeer_request_meta(rawpeer *p, uint32_t id, const uint8_t *meta,
                     size_t meta_len, const char *text)
{
    Rrtest__Echo e = RRTEST__ECHO__INIT;
    char tbuf[64];
    uint8_t hdr[RR_FRAME_HEADER_SIZE], body[128];

    snprintf(tbuf, sizeof(tbuf), "%s", text);
    e.text = tbuf;
    size_t n = protobuf_c_message_get_packed_size(&e.base);
    assert_true(n <= sizeof(body));
    protobuf_c_message_pack(&e.base, body);
    rr__put_be32(hdr, (uint32_t) (meta_len + n));
    hdr[4] = RR_FRAME_REQUEST;
    hdr[5] = 0;
    rr__put_be16(hdr + 6, (uint16_t) meta_len);
    rr__put_be32(hdr + 8, id);
    rawpeer_send(p, hdr, sizeof(hdr));
    rawpeer_send(p, meta, meta_len);
    rawpeer_send(p, body, n);
}

// Reads the next RESPONSE (skipping SETTINGS, PING, PONG); false on EOF
// or a GOAWAY, whose frame is then left in *goaway when not NULL.
bool
rawpeer_reply(rawpeer *p, rawpeer_reply_t *r, rr_goaway *goaway)
{
    rr_frame f;

    memset(r, 0, sizeof(*r)); // defined even when no RESPONSE comes

    for (;;) {
        if (!rawpeer_frame(p, &f))
            return false;
        if (f.type == RR_FRAME_GOAWAY) {
            if (goaway != NULL)
                rr__goaway_parse(&f, goaway);
            return false;
        }
        if (f.type == RR_FRAME_RESPONSE)
            break;
    }
    r->id = f.call_id;
    r->meta_len = f.meta_len;
    if (f.meta_len > 0) {
        ProtobufCMessage *m;
        assert_int_equal(rr__meta_unpack(&rawrpc__v1__response_meta__descriptor,
                                         &f, NULL, &m),
                         RR_OK);
        Rawrpc__V1__ResponseMeta *rm = (Rawrpc__V1__ResponseMeta *) m;
        r->status = rm->status;
        r->message_len = strlen(rm->message);
        assert_true(r->message_len < sizeof(r->message));
        memcpy(r->message, rm->message, r->message_len + 1);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    if (r->status == RR_STATUS_OK) {
        Rrtest__Echo *e = rrtest__echo__unpack(NULL, rr__frame_payload_len(&f),
                                               rr__frame_payload(&f));
        assert_non_null(e);
        r->data_len = e->data.len;
        rrtest__echo__free_unpacked(e, NULL);
    }
    return true;
}

// A raw peer that handshakes with these SETTINGS.
void
rawpeer_connect_with(rawpeer *p, fixture *fx, const rr_settings *s)
{
    rr_buf b;

    rawpeer_connect(p, fx);
    rr__buf_init(&b, 1024);
    assert_int_equal(rr__preface_put(&b, 1), RR_OK);
    assert_int_equal(rr__settings_put(&b, s), RR_OK);
    rawpeer_send(p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
}

void
rawpeer_send_goaway(rawpeer *p, uint32_t last, uint32_t code, const char *msg)
{
    rr_buf b;

    rr__buf_init(&b, 1024);
    assert_int_equal(rr__frame_put_goaway(&b, last, code, msg), RR_OK);
    rawpeer_send(p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
}
