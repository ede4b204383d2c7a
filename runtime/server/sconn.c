// SPDX-License-Identifier: MIT
//
// sconn.c -- a server's client connection; see sconn.h.

#include "server/sconn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/meta.h"
#include "codec/utf8.h"
#include "server/server.h"
#include "util/container.h"
#include "util/log.h"

rr_server *
rr__sconn_server(const rr_sconn *sc)
{
    return sc->srv;
}

// Fills meta with a non-OK status and msg as the client may receive it
// (PROTOCOL.md 5.2): well-formed UTF-8 in text (RR_STATUS_MESSAGE_MAX + 1
// bytes), at most RR_STATUS_MESSAGE_MAX bytes, and shortened, on a
// character boundary, to the client's MAX_METADATA_SIZE.  The status
// itself is sent even when that limit cannot hold it.
static void
sconn_status_meta(const rr_sconn *sc, Rawrpc__V1__ResponseMeta *meta,
                  rr_status status, const char *msg, char *text)
{
    size_t len = rr__utf8_escape(text, RR_STATUS_MESSAGE_MAX + 1,
                                 (const uint8_t *) (msg != NULL ? msg : ""),
                                 msg != NULL ? strlen(msg) : 0, false);
    size_t room = rr__response_message_room((uint32_t) status,
                                            sc->c.peer.max_metadata_size);

    text[rr__utf8_cut(text, len, room)] = '\0';
    rawrpc__v1__response_meta__init(meta);
    meta->status = (uint32_t) status;
    meta->message = text;
}

void
rr__sconn_respond(rr_sconn *sc, uint32_t id, rr_status status, const char *msg,
                  const ProtobufCMessage *reply, const uint8_t *raw,
                  size_t raw_len)
{
    Rawrpc__V1__ResponseMeta meta;
    const ProtobufCMessage *mp = NULL; // an OK reply carries no metadata
    char text[RR_STATUS_MESSAGE_MAX + 1];
    char buf[160];
    int rv;

    if (sc->c.state == RR_CONN_CLOSED)
        return;
    if (status != RR_STATUS_OK) {
        sconn_status_meta(sc, &meta, status, msg, text);
        mp = &meta.base;
    }
    uint32_t max = sc->c.peer.max_frame_size;
    if (raw != NULL || (reply == NULL && status == RR_STATUS_OK))
        rv = rr__call_put_raw(&sc->c.out, RR_FRAME_RESPONSE, id, mp, raw,
                              raw_len, max);
    else
        rv = rr__call_put(&sc->c.out, RR_FRAME_RESPONSE, id, mp, reply, max);
    if (rv == RR_EMSGSIZE) {
        size_t n =
            reply != NULL ? protobuf_c_message_get_packed_size(reply) : raw_len;
        snprintf(buf, sizeof(buf),
                 "reply of %zu bytes exceeds the client's %" PRIu32
                 "-byte limit",
                 n, max);
        sconn_status_meta(sc, &meta, RR_STATUS_RESOURCE_EXHAUSTED, buf, text);
        rv = rr__call_put(&sc->c.out, RR_FRAME_RESPONSE, id, &meta.base, NULL,
                          max);
    }
    if (rv != RR_OK) {
        rr__conn_fail(&sc->c, RR_GOAWAY_INTERNAL_ERROR, rv,
                      "no room for a response: %s", rr_strerror(rv));
        return;
    }
    rr__conn_queued(&sc->c);
}

void
rr__sconn_finish(rr_sconn *sc)
{
    rr__conn_finish(&sc->c);
}

// ------------------------------------------------------------ requests

static void sconn_reject(rr_sconn *sc, uint32_t id, rr_status status,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
sconn_reject(rr_sconn *sc, uint32_t id, rr_status status, const char *fmt, ...)
{
    char msg[RR_STATUS_MESSAGE_MAX + 1];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rr__log(RR_LOG_DEBUG, "%s: call %" PRIu32 " rejected: %s: %s",
            sc->c.peer_name, id, rr_status_name(status), msg);
    rr__sconn_respond(sc, id, status, msg, NULL, NULL, 0);
}

// Answers UNIMPLEMENTED for the name a peer sent, quoted as UTF-8 with
// every control or ill-formed byte escaped, and cut between characters.
static void
sconn_reject_method(rr_sconn *sc, uint32_t id, const char *name, size_t len)
{
    char quoted[256];

    rr__utf8_escape(quoted, sizeof(quoted), (const uint8_t *) name, len, true);
    sconn_reject(sc, id, RR_STATUS_UNIMPLEMENTED, "unknown method %s%s", quoted,
                 strlen(quoted) < len ? "..." : "");
}

// Reads the request's metadata and finds its method: true, with call->m
// and h set; false after answering the failure.
static bool
sconn_method(rr_sconn *sc, rr_call *call, const rr_frame *f, rr_request_head *h)
{
    ProtobufCMessage *m;

    if (!rr__request_head_decode(f->body, f->meta_len, h)) {
        // User metadata, or an unusual encoding: protobuf-c decodes it.
        int rv = rr__meta_unpack(&rawrpc__v1__request_meta__descriptor, f,
                                 &call->arena.alloc, &m);
        if (rv == RR_ENOMEM) {
            sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                         "server out of memory");
            return false;
        }
        if (rv != RR_OK) {
            sconn_reject(sc, f->call_id, RR_STATUS_INVALID_ARGUMENT,
                         "request metadata does not parse");
            return false;
        }
        call->meta = (Rawrpc__V1__RequestMeta *) m;
        h->timeout_us = call->meta->timeout_us;
        // The name as the wire has it: protobuf-c's copy stops at a NUL,
        // and "/a.B/C\0anything" must not run /a.B/C.
        if (!rr__request_meta_method(f->body, f->meta_len, &h->method,
                                     &h->method_len)) {
            sconn_reject(sc, f->call_id, RR_STATUS_INVALID_ARGUMENT,
                         "request metadata does not parse");
            return false;
        }
    }
    call->m = rr__methods_find(sc->methods, sc->memo, h->method, h->method_len);
    if (call->m == NULL) {
        sconn_reject_method(sc, f->call_id, h->method, h->method_len);
        return false;
    }
    return true;
}

// Unpacks and checks the request; returns the call to dispatch, or NULL
// after answering the failure.
static rr_call *
sconn_prepare(rr_sconn *sc, const rr_frame *f)
{
    rr_call *call = rr__call_new(sc->core, sc, f->call_id, sc->c.peer_name);
    if (call == NULL) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "server out of memory");
        return NULL;
    }
    rr_request_head h;
    call->m = rr__methods_recall(sc->memo, f->body, f->meta_len, &h.timeout_us);
    if (call->m == NULL && !sconn_method(sc, call, f, &h))
        goto fail;
    if (call->m->handler == NULL && call->m->tramp == NULL) {
        sconn_reject(sc, f->call_id, RR_STATUS_UNIMPLEMENTED,
                     "unknown method %s", call->m->name);
        goto fail;
    }
    if (h.timeout_us > 0) {
        call->deadline_at = ev_now(sc->c.loop) + (double) h.timeout_us / 1e6;
        // ev_now is when this wake-up began; the budget may be spent by
        // the time we get here.
        if (ev_time() >= call->deadline_at) {
            sconn_reject(sc, f->call_id, RR_STATUS_DEADLINE_EXCEEDED,
                         "deadline passed before dispatch");
            goto fail;
        }
    }
    int rv = rr__unpack_arena(call->m->m.input, &call->arena,
                              rr__frame_payload_len(f), rr__frame_payload(f),
                              &call->req);
    if (rv == RR_ENOMEM) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "server out of memory");
        goto fail;
    }
    if (rv != RR_OK) {
        sconn_reject(sc, f->call_id, RR_STATUS_INVALID_ARGUMENT,
                     "request does not parse as %s", call->m->m.input->name);
        goto fail;
    }
    return call;

fail:
    rr__call_discard(call);
    return NULL;
}

static void
sconn_request(rr_sconn *sc, const rr_frame *f)
{
    const rr_server_opts *o = rr__server_opts(sc->srv);

    if (f->call_id <= sc->last_id) {
        rr__conn_fail(&sc->c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "call ID %" PRIu32
                      " is not above the last call ID %" PRIu32,
                      f->call_id, sc->last_id);
        return;
    }
    sc->last_id = f->call_id;
    if (sc->peer_done) {
        rr__conn_fail(&sc->c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "REQUEST %" PRIu32 " after the client's GOAWAY",
                      f->call_id);
        return;
    }
    if (sc->goaway_sent)
        return; // crossed our GOAWAY: never executed, never answered
    sc->c.goaway_last = f->call_id;
    if (sc->calls.count >= o->max_concurrent_calls) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "%zu calls in flight reach the %" PRIu32 "-call limit",
                     sc->calls.count, o->max_concurrent_calls);
        return;
    }
    if (f->meta_len > o->max_metadata_size) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "request metadata of %u bytes exceeds the %" PRIu32
                     "-byte limit",
                     (unsigned) f->meta_len, o->max_metadata_size);
        return;
    }
    rr_call *call = sconn_prepare(sc, f);
    if (call == NULL)
        return;
    if (rr__idmap_put(&sc->calls, call->id, call) != RR_OK) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "server out of memory");
        rr__call_discard(call);
        return;
    }
    rr__call_start(call);
}

// The client sends no more REQUESTs (its GOAWAY, or its EOF): answer
// what is in flight, then end the connection gracefully.
static void
sconn_peer_done(rr_sconn *sc)
{
    sc->peer_done = true;
    if (sc->calls.count == 0)
        rr__conn_finish(&sc->c);
}

static void
sconn_on_frame(rr_conn *c, const rr_frame *f)
{
    rr_sconn *sc = RR_CONTAINER_OF(c, rr_sconn, c);
    rr_server *srv = sc->srv;

    rr__server_hold(srv);
    switch (f->type) {
    case RR_FRAME_REQUEST:
        sconn_request(sc, f);
        break;
    case RR_FRAME_CANCEL: {
        rr_call *call = rr__idmap_get(&sc->calls, f->call_id);
        if (call != NULL) // else: completed already, or crossed
            rr__call_cancel(call, RR_STATUS_CANCELLED,
                            "cancelled by the client");
        break;
    }
    case RR_FRAME_GOAWAY: {
        rr_goaway g;
        rr__goaway_parse(f, &g);
        rr__log(g.code == RR_GOAWAY_NO_ERROR ? RR_LOG_DEBUG : RR_LOG_WARN,
                "%s: GOAWAY %s: %.*s", c->peer_name,
                rr__goaway_code_name(g.code), (int) g.message_len, g.message);
        sconn_peer_done(sc); // its calls finish as usual, then we close
        break;
    }
    default:
        rr__conn_fail(c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "a client sent a %s frame", rr__frame_type_name(f->type));
    }
    rr__server_release(srv);
}

static void
sconn_on_open(rr_conn *c)
{
    (void) c;
}

// Sends GOAWAY NO_ERROR once, naming the last call sc will answer.
static void
sconn_send_goaway(rr_sconn *sc, const char *why)
{
    if (sc->goaway_sent)
        return;
    sc->goaway_sent = true;
    sc->c.goaway_last = sc->last_id;
    if (rr__frame_put_goaway(&sc->c.out, sc->last_id, RR_GOAWAY_NO_ERROR,
                             why) == RR_OK)
        rr__conn_queued(&sc->c);
}

// The client shut its write side: it still reads.  Its accepted calls
// get their RESPONSEs (PROTOCOL.md section 6), after a GOAWAY that tells
// it which calls those are.
static void
sconn_on_eof(rr_conn *c)
{
    rr_sconn *sc = RR_CONTAINER_OF(c, rr_sconn, c);
    rr_server *srv = sc->srv;

    rr__server_hold(srv);
    rr__log(RR_LOG_DEBUG, "%s: half-closed with %zu calls in flight",
            c->peer_name, sc->calls.count);
    sconn_send_goaway(sc, "client closed its side");
    sconn_peer_done(sc);
    rr__server_release(srv);
}

// The connection is gone: off the server's list first, so that a cancel
// callback below that frees the server does not find it again, then its
// calls are cancelled.
static void
sconn_on_close(rr_conn *c, int err, const char *why)
{
    rr_sconn *sc = RR_CONTAINER_OF(c, rr_sconn, c);
    rr_server *srv = sc->srv;
    rr_idmap_cursor cur = {0};
    rr_call *call;

    rr__server_hold(srv);
    rr__log(err == RR_OK ? RR_LOG_DEBUG : RR_LOG_INFO, "%s: closed: %s",
            c->peer_name, why);
    rr__server_unlink(srv, sc);
    while ((call = rr__idmap_pop(&sc->calls, &cur, NULL)) != NULL) {
        rr__call_detach(call);
        rr__call_cancel(call, RR_STATUS_UNAVAILABLE, why);
    }
    rr__server_check_done(srv);
    rr__server_release(srv);
}

static void
sconn_on_free(rr_conn *c)
{
    rr_sconn *sc = RR_CONTAINER_OF(c, rr_sconn, c);

    rr__idmap_fini(&sc->calls);
    free(sc);
}

static const rr_conn_ops sconn_ops = {
    .on_open = sconn_on_open,
    .on_eof = sconn_on_eof,
    .on_frame = sconn_on_frame,
    .on_close = sconn_on_close,
    .on_free = sconn_on_free,
};

bool
rr__sconn_open(rr_server *srv, rr__core *core, int fd, const char *peer,
               const rr_conn_cfg *cfg)
{
    rr_sconn *sc = calloc(1, sizeof(*sc));

    if (sc == NULL) {
        close(fd);
        return false;
    }
    sc->srv = srv;
    sc->core = core;
    sc->methods = rr__core_methods(core);
    sc->memo = rr__core_memo(core);
    rr__idmap_init(&sc->calls);
    rr__server_link(srv, sc);
    rr__conn_start(&sc->c, rr__server_loop(srv), fd, false, false, cfg,
                   &sconn_ops, peer);
    return true;
}

// ------------------------------------------------------------- shutdown

void
rr__sconn_goaway(rr_sconn *sc)
{
    if (sc->c.state != RR_CONN_OPEN) {
        rr__conn_close(&sc->c, RR_ECLOSED, "server shutting down");
        return;
    }
    sconn_send_goaway(sc, "server shutting down"); // unless a half-close did
    if (sc->calls.count == 0)
        rr__conn_finish(&sc->c);
}

void
rr__sconn_grace_over(rr_sconn *sc)
{
    rr_idmap_cursor cur = {0};
    rr_call *call;

    while (!rr__server_freed(sc->srv) &&
           (call = rr__idmap_pop(&sc->calls, &cur, NULL)) != NULL)
        rr__call_cancel(call, RR_STATUS_UNAVAILABLE,
                        "server shut down: grace period expired");
    rr__conn_finish(&sc->c);
}
