// SPDX-License-Identifier: MIT
//
// subchannel.c -- one address of a channel and its connections; see
// subchannel.h.

#include "client/subchannel.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "codec/meta.h"
#include "transport/conn.h"
#include "util/container.h"
#include "util/log.h"

#define MD_ON_STACK 8
// pc_put_meta's answer for metadata over the server's limit.
#define META_OVER 1

static void cc_stop_using(ch_conn *cc);
static void sub_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents);

void
rr__sub_init(rr__subchannel *sub, rr_channel *ch, const rr_addr *addr)
{
    memset(sub, 0, sizeof(*sub));
    sub->ch = ch;
    sub->addr = *addr;
    sub->state = RR_SUB_IDLE;
    sub->backoff_cur = ch->opts.backoff_initial;
    sub->rng = (uint64_t) (uintptr_t) sub ^ (uint64_t) (ev_time() * 1e6) ^
               0x9E3779B97F4A7C15ull;
    if (sub->rng == 0)
        sub->rng = 1;
    ev_timer_init(&sub->backoff, sub_backoff_cb, 0., 0.);
}

void
rr__sub_close(rr__subchannel *sub)
{
    ev_timer_stop(sub->ch->loop, &sub->backoff);
    if (sub->conn != NULL)
        rr__conn_close(&sub->conn->c, RR_ECLOSED, "channel freed");
    while (sub->old != NULL)
        rr__conn_close(&sub->old->c, RR_ECLOSED, "channel freed");
}

// Frames a request with user metadata through protobuf-c; META_OVER,
// with *meta_len, when its metadata exceeds the server's limit.
static int
pc_put_meta(ch_conn *cc, ch_call *pc, uint32_t id, uint64_t timeout_us,
            size_t *meta_len)
{
    Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
    Rawrpc__V1__MetadataEntry ents[MD_ON_STACK], *ptrs_stack[MD_ON_STACK];
    Rawrpc__V1__MetadataEntry *ents_heap = NULL, **ptrs = ptrs_stack;
    Rawrpc__V1__MetadataEntry *e = ents;

    if (pc->n_md > MD_ON_STACK) {
        ents_heap = malloc(pc->n_md * (sizeof(Rawrpc__V1__MetadataEntry) +
                                       sizeof(Rawrpc__V1__MetadataEntry *)));
        if (ents_heap == NULL)
            return RR_ENOMEM;
        e = ents_heap;
        ptrs = (Rawrpc__V1__MetadataEntry **) (void *) (ents_heap + pc->n_md);
    }
    for (size_t i = 0; i < pc->n_md; i++) {
        rawrpc__v1__metadata_entry__init(&e[i]);
        e[i].key = (char *) pc->md[i].key;
        e[i].value.data = (uint8_t *) pc->md[i].value;
        e[i].value.len = pc->md[i].value_len;
        ptrs[i] = &e[i];
    }
    meta.method = (char *) pc->m->full_name;
    meta.timeout_us = timeout_us;
    meta.n_metadata = pc->n_md;
    meta.metadata = ptrs;
    int rv = META_OVER;
    *meta_len = protobuf_c_message_get_packed_size(&meta.base);
    if (*meta_len <= cc->c.peer.max_metadata_size)
        rv = rr__call_put_raw(&cc->c.out, RR_FRAME_REQUEST, id, &meta.base,
                              pc->payload, pc->payload_len,
                              cc->c.peer.max_frame_size);
    free(ents_heap);
    return rv;
}

static size_t
varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

// Frames the call onto cc, or fails it (from the loop) when it cannot be
// sent: a request or metadata over the server's limits, no memory.  The
// ID's map slot is taken first: a frame in the output has spent its ID,
// and the ID of a call that fails before is still unused.  Runs no user
// code; when this used cc's last ID, cc stops taking calls.
static void
cc_send(ch_conn *cc, ch_call *pc)
{
    uint64_t timeout_us = 0;
    size_t meta_len = 0;
    char msg[160];
    int rv;

    if (pc->deadline_at > 0) {
        double left = (pc->deadline_at - ev_now(cc->sub->ch->loop)) * 1e6;
        timeout_us = left >= 1 ? (uint64_t) left : 1;
    }
    uint32_t id = (uint32_t) cc->next_id;
    if (rr__idmap_put(&cc->calls, id, pc) != RR_OK) {
        rr__pc_finish(pc, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (pc->n_md == 0) { // the common form, without protobuf-c
        const char *name = pc->m->full_name;
        size_t len = strlen(name);
        // As rr__request_put writes it: proto3 leaves out zero fields.
        meta_len = 1 + varint_len(len) + len +
                   (timeout_us > 0 ? 1 + varint_len(timeout_us) : 0);
        rr_request_head h = {name, len, timeout_us};
        rv = meta_len > cc->c.peer.max_metadata_size
                 ? META_OVER
                 : rr__request_put(&cc->c.out, id, &h, pc->payload,
                                   pc->payload_len, cc->c.peer.max_frame_size);
    } else {
        rv = pc_put_meta(cc, pc, id, timeout_us, &meta_len);
    }
    if (rv != RR_OK) {
        rr__idmap_del(&cc->calls, id); // not framed: the ID stays unused
        if (rv == META_OVER)
            snprintf(msg, sizeof(msg),
                     "request metadata of %zu bytes exceeds the server's "
                     "%" PRIu32 "-byte limit",
                     meta_len, cc->c.peer.max_metadata_size);
        else if (rv == RR_EMSGSIZE)
            snprintf(msg, sizeof(msg),
                     "request of %zu bytes exceeds the server's %" PRIu32
                     "-byte limit",
                     pc->payload_len, cc->c.peer.max_frame_size);
        else
            snprintf(msg, sizeof(msg), "cannot queue the request: %s",
                     rr_strerror(rv));
        rr__pc_finish(pc, RR_STATUS_RESOURCE_EXHAUSTED, msg);
        return;
    }
    cc->next_id++;
    pc->cc = cc;
    pc->id = id;
    rr__conn_queued(&cc->c);
    if (cc->next_id > UINT32_MAX)
        cc_stop_using(cc); // every ID used: the next call reconnects
}

static double
sub_jitter(rr__subchannel *sub)
{
    sub->rng ^= sub->rng << 13; // xorshift64
    sub->rng ^= sub->rng >> 7;
    sub->rng ^= sub->rng << 17;
    return (double) (sub->rng >> 11) / (double) (1ull << 53) * 2.0 - 1.0;
}

static void
sub_backoff(rr__subchannel *sub)
{
    rr_channel *ch = sub->ch;

    if (ch->freed)
        return; // nothing may start on a channel going away
    double d =
        sub->backoff_cur * (1.0 + ch->opts.backoff_jitter * sub_jitter(sub));
    sub->state = RR_SUB_BACKOFF;
    sub->backoff_cur *= ch->opts.backoff_multiplier;
    if (sub->backoff_cur > ch->opts.backoff_max)
        sub->backoff_cur = ch->opts.backoff_max;
    rr__log(RR_LOG_INFO, "%s: reconnecting in %.3f s", ch->target, d);
    ev_timer_set(&sub->backoff, d > 0 ? d : 0., 0.);
    ev_timer_start(ch->loop, &sub->backoff);
}

static void
sub_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    rr__subchannel *sub = RR_CONTAINER_OF(w, rr__subchannel, backoff);
    rr_channel *ch = sub->ch;

    rr__ch_hold(ch);
    sub->state = RR_SUB_IDLE;
    if (ch->q_head != NULL)
        rr__sub_connect(sub);
    rr__ch_release(ch);
}

// The fast path: a RESPONSE completes its call here, from the read
// callback, with the reply in the channel's arena.
static void
cc_response(ch_conn *cc, const rr_frame *f)
{
    if (f->call_id >= cc->next_id) {
        rr__conn_fail(&cc->c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "response to call ID %" PRIu32 ", which was never sent",
                      f->call_id);
        return;
    }
    ch_call *pc = rr__idmap_del(&cc->calls, f->call_id);
    if (pc == NULL || pc == ZOMBIE)
        return; // a late reply to a call given up on: dropped

    pc->cc = NULL;
    ProtobufCMessage *m = NULL;
    rr_status status = RR_STATUS_OK;
    const char *msg = NULL;
    char buf[160];
    if (f->meta_len > 0) {
        int rv = rr__meta_unpack(&rawrpc__v1__response_meta__descriptor, f,
                                 NULL, &m);
        if (rv != RR_OK) {
            if (rv == RR_ENOMEM)
                rr__pc_settle(pc, RR_STATUS_RESOURCE_EXHAUSTED,
                              "out of memory for the response metadata");
            else
                rr__pc_settle(pc, RR_STATUS_INTERNAL,
                              "response metadata does not parse");
            rr__pc_deliver(pc);
            return;
        }
        Rawrpc__V1__ResponseMeta *rm = (Rawrpc__V1__ResponseMeta *) m;
        status = rm->status <= RR_STATUS_MAX ? (rr_status) rm->status
                                             : RR_STATUS_UNKNOWN;
        msg = rm->message;
    }
    rr_channel *ch = cc->sub->ch;
    bool shared = false;
    if (status == RR_STATUS_OK && pc->m->output == NULL) {
        // A raw call: the bytes as they came, during the callback.
        pc->reply_data = rr__frame_payload(f);
        pc->reply_len = rr__frame_payload_len(f);
    } else if (status == RR_STATUS_OK) {
        // Into an arena: no malloc; the blocking API hands the reply to
        // its caller, so that one is malloc'd.
        shared = !pc->keep_reply && !ch->replies_busy;
        ProtobufCAllocator *alloc = pc->keep_reply ? NULL
                                    : shared       ? &ch->replies.alloc
                                                   : &pc->arena.alloc;
        ch->replies_busy |= shared;
        rr_arena *arena = rr__arena_of(alloc);
        int rv =
            arena != NULL
                ? rr__unpack_arena(pc->m->output, arena,
                                   rr__frame_payload_len(f),
                                   rr__frame_payload(f), &pc->reply)
                : rr__unpack(pc->m->output, alloc, rr__frame_payload_len(f),
                             rr__frame_payload(f), &pc->reply);
        if (rv == RR_ENOMEM) {
            status = RR_STATUS_RESOURCE_EXHAUSTED;
            msg = "out of memory for the reply";
        } else if (rv != RR_OK) {
            snprintf(buf, sizeof(buf), "reply does not parse as %s",
                     pc->m->output->name);
            status = RR_STATUS_INTERNAL;
            msg = buf;
        }
    }
    rr__pc_settle(pc, status, msg);
    rr__pc_deliver(pc); // the callback runs here
    if (shared) {
        rr__arena_reset(&ch->replies);
        ch->replies_busy = false;
    }
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
}

// Ends a retired connection whose calls are done: GOAWAY NO_ERROR, then
// the graceful close (PROTOCOL.md section 6).  Once.
static void
cc_retire(ch_conn *cc)
{
    if (cc->goaway_sent)
        return;
    cc->goaway_sent = true;
    if (cc->c.state == RR_CONN_OPEN &&
        rr__frame_put_goaway(&cc->c.out, 0, RR_GOAWAY_NO_ERROR,
                             "client done with this connection") == RR_OK) {
        rr__conn_queued(&cc->c);
        rr__conn_finish(&cc->c);
        return;
    }
    rr__conn_close(&cc->c, RR_OK, "retired connection done");
}

// Takes cc out of service (GOAWAY received, or every ID used): it takes
// no new calls, and it closes once its last call is done -- now, when
// none is in flight.  Callers must not touch cc afterwards: the close
// may free it.
static void
cc_stop_using(ch_conn *cc)
{
    rr__subchannel *sub = cc->sub;

    cc->retired = true;
    if (sub->conn == cc) {
        sub->conn = NULL;
        cc->next_old = sub->old;
        sub->old = cc;
        sub->state = RR_SUB_IDLE; // the next call, or the pump, reconnects
    }
    if (cc->calls.count == 0)
        cc_retire(cc);
}

static int
id_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return (x > y) - (x < y);
}

// GOAWAY: calls above last_call_id never ran, so they go back to the
// queue for a new connection; the rest finish here.
static void
cc_goaway(ch_conn *cc, const rr_frame *f)
{
    rr_channel *ch = cc->sub->ch;
    rr_goaway g;

    rr__goaway_parse(f, &g);
    rr__log(g.code == RR_GOAWAY_NO_ERROR ? RR_LOG_INFO : RR_LOG_WARN,
            "%s: GOAWAY %s, last call %" PRIu32 ": %.*s", cc->c.peer_name,
            rr__goaway_code_name(g.code), g.last_call_id, (int) g.message_len,
            g.message);
    cc->retired = true;
    // Collect from the map, not the ID range: a hostile last_call_id of 0
    // must not cost four billion steps.  (Without memory for the list, the
    // calls fail with UNAVAILABLE when the connection closes instead.)
    uint32_t *ids = malloc((cc->calls.count + 1) * sizeof(*ids));
    size_t n = ids != NULL ? rr__idmap_keys(&cc->calls, ids) : 0;
    // Back at the queue's head in the order they were sent: the highest
    // ID first, each in front of the last.
    if (n > 1)
        qsort(ids, n, sizeof(*ids), id_cmp);
    for (size_t i = n; i-- > 0;) {
        if (ids[i] <= g.last_call_id)
            break;
        void *v = rr__idmap_del(&cc->calls, ids[i]);
        if (v != ZOMBIE) {
            ch_call *pc = v;
            pc->cc = NULL;
            rr__ch_requeue(ch, pc); // it never ran: safe to send again
        }
    }
    free(ids);
    cc_stop_using(cc);
    rr__ch_pump(ch);
}

static void
cc_on_frame(rr_conn *c, const rr_frame *f)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);
    rr_channel *ch = cc->sub->ch;

    rr__ch_hold(ch);
    switch (f->type) {
    case RR_FRAME_RESPONSE:
        cc_response(cc, f);
        if (ch->freed)
            break; // by the callback: its connections are closed
        if (cc->retired && cc->calls.count == 0)
            cc_retire(cc);
        else if (ch->q_head != NULL) // a slot is free: the queue may move
            rr__ch_pump(ch);
        break;
    case RR_FRAME_GOAWAY:
        cc_goaway(cc, f);
        break;
    default:
        rr__conn_fail(c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "a server sent a %s frame", rr__frame_type_name(f->type));
    }
    rr__ch_release(ch);
}

static void
cc_on_open(rr_conn *c)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);
    rr__subchannel *sub = cc->sub;
    rr_channel *ch = sub->ch;

    rr__ch_hold(ch);
    cc->opened = true;
    if (sub->conn == cc) {
        sub->state = RR_SUB_READY;
        sub->backoff_cur = ch->opts.backoff_initial;
        rr__log(RR_LOG_DEBUG, "%s: connected", ch->target);
        rr__ch_pump(ch);
    }
    rr__ch_release(ch);
}

// Fails the connection's calls (from the loop: this runs no user code,
// so nothing it walks can be freed under it) and decides what the
// channel does next.
static void
cc_on_close(rr_conn *c, int err, const char *why)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);
    rr__subchannel *sub = cc->sub;
    rr_channel *ch = sub->ch;
    rr_idmap_cursor cur = {0};
    void *v;

    rr__ch_hold(ch);
    if (err != RR_OK)
        rr__log(RR_LOG_INFO, "%s: connection lost: %s", ch->target, why);
    snprintf(sub->last_error, sizeof(sub->last_error), "%s", why);
    while ((v = rr__idmap_pop(&cc->calls, &cur, NULL)) != NULL) {
        if (v == ZOMBIE)
            continue;
        ch_call *pc = v;
        pc->cc = NULL;
        rr__pc_finish(pc, RR_STATUS_UNAVAILABLE, why);
    }
    if (sub->conn == cc) {
        sub->conn = NULL;
        if (ch->freed) {
            // nothing: the channel is going away
        } else if (cc->opened && ch->q_head == NULL) {
            sub->state = RR_SUB_IDLE; // the next call reconnects at once
        } else {
            if (!cc->opened)
                rr__ch_fail_queue(ch, why); // transient failure: fail fast
            sub_backoff(sub);
        }
    } else {
        for (ch_conn **p = &sub->old; *p != NULL; p = &(*p)->next_old) {
            if (*p == cc) {
                *p = cc->next_old;
                break;
            }
        }
    }
    rr__ch_release(ch);
}

static void
cc_on_free(rr_conn *c)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);

    rr__idmap_fini(&cc->calls);
    free(cc);
}

// The output is empty: calls waiting for room may go (rr__ch_drain).
static void
cc_on_written(rr_conn *c)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);

    if (cc->sub->conn == cc)
        rr__ch_drain(cc->sub->ch);
}

static const rr_conn_ops cc_ops = {
    .on_open = cc_on_open,
    .on_frame = cc_on_frame,
    .on_close = cc_on_close,
    .on_free = cc_on_free,
    .on_written = cc_on_written,
};

void
rr__sub_connect(rr__subchannel *sub)
{
    rr_channel *ch = sub->ch;
    rr_conn_cfg cfg;
    int fd = socket(sub->addr.ss.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bool connecting = false;

    if (fd >= 0 &&
        connect(fd, (struct sockaddr *) &sub->addr.ss, sub->addr.len) != 0) {
        if (errno == EINPROGRESS) {
            connecting = true;
        } else {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        snprintf(sub->last_error, sizeof(sub->last_error),
                 "connect to %s failed: %s", ch->target, strerror(errno));
        rr__log(RR_LOG_INFO, "%s", sub->last_error);
        rr__ch_fail_queue(ch, sub->last_error);
        sub_backoff(sub);
        return;
    }
    ch_conn *cc = calloc(1, sizeof(*cc));
    if (cc == NULL) {
        close(fd);
        snprintf(sub->last_error, sizeof(sub->last_error),
                 "connect to %s: out of memory", ch->target);
        rr__ch_fail_queue(ch, sub->last_error);
        sub_backoff(sub);
        return;
    }
    cc->sub = sub;
    cc->next_id = 1;
    rr__idmap_init(&cc->calls);
    sub->conn = cc;
    sub->state = RR_SUB_CONNECTING;

    rr__settings_init(&cfg.local);
    cfg.local.max_frame_size = ch->opts.max_frame_size;
    cfg.local.max_metadata_size = RR_META_MAX;
    cfg.local.heartbeat_interval_ms =
        (uint32_t) (ch->opts.heartbeat_interval * 1000);
    cfg.handshake_timeout = ch->opts.connect_timeout;
    cfg.hb_interval = ch->opts.heartbeat_interval;
    cfg.hb_timeout = ch->opts.heartbeat_timeout;
    cfg.out_high = 0;
    cfg.out_low = 0;
    cfg.keepalive = ch->opts.tcp_keepalive;
    cfg.scratch = ch->scratch;
    rr__conn_start(&cc->c, ch->loop, fd, true, connecting, &cfg, &cc_ops,
                   ch->target);
}

void
rr__sub_send(rr__subchannel *sub, ch_call *pc)
{
    cc_send(sub->conn, pc); // may retire sub->conn
}

bool
rr__sub_drained(const rr__subchannel *sub)
{
    return sub->state != RR_SUB_READY || sub->conn == NULL ||
           rr__buf_size(&sub->conn->c.out) <= RR__SUB_OUT_LOW;
}

void
rr__sub_forget_sent(ch_call *pc, bool send_cancel)
{
    ch_conn *cc = pc->cc;

    pc->cc = NULL;
    rr__idmap_del(&cc->calls, pc->id);
    if (cc->c.state != RR_CONN_OPEN)
        return;
    if (rr__idmap_put(&cc->calls, pc->id, ZOMBIE) != RR_OK)
        return; // out of memory: the late reply will just be unknown
    if (send_cancel && rr__frame_put_cancel(&cc->c.out, pc->id) == RR_OK)
        rr__conn_queued(&cc->c);
}

int
rr__sub_set_next_id(rr__subchannel *sub, uint32_t id)
{
    if (sub->conn == NULL || id == 0)
        return RR_EINVAL;
    sub->conn->next_id = id; // 64-bit: never wraps to a used ID
    return RR_OK;
}
