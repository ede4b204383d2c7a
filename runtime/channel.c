// SPDX-License-Identifier: MIT
//
// channel.c -- rr_channel: the client side.  One connection at a time
// carries every call, multiplexed by call ID; calls wait in a queue while
// the channel connects or while the server's concurrency limit is
// reached.  A lost connection is replaced after an exponential backoff
// with jitter (gRPC's connection-backoff defaults).
//
// Call IDs are never reused on a connection (PROTOCOL.md section 6): a
// call given up on (deadline, cancel) leaves a ZOMBIE in the ID map until
// its late RESPONSE arrives, so the in-flight count matches the server's
// and the late reply is recognised and dropped.

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "arena.h"
#include "call.h"
#include "channel.h"
#include "conn.h"
#include "idmap.h"
#include "log.h"
#include "meta.h"
#include "rawrpc/rawrpc.h"
#include "rawrpc/stub.h"

#define MD_ON_STACK   8
#define CALL_POOL_MAX 256

typedef struct ch_conn ch_conn;
typedef struct ch_call ch_call;

enum ch_state { CH_IDLE, CH_CONNECTING, CH_READY, CH_BACKOFF };

struct ch_conn {
    rr_conn c;
    rr_channel *ch;
    ch_conn *next_old; // on the channel's list of draining connections
    rr_idmap calls;    // call ID -> ch_call, or ZOMBIE
    uint64_t next_id;  // 2^32: every ID used, the connection is retired
    bool opened;       // the handshake completed
    bool retired;      // GOAWAY received, or IDs exhausted: no new calls
};

struct ch_call {
    rr_channel *ch;
    ch_call *prev, *next; // the channel's live calls
    ch_call *qnext;       // the send queue
    bool queued;
    ch_conn *cc; // set while sent and unanswered
    uint32_t id;
    uint64_t token;
    const rr_method *m;
    rr_result_cb cb;      // or:
    rr_stub_result tramp; // a generated trampoline with
    rr_stub_fn fn;        // its typed callback
    void *arg;
    ev_timer timer;        // the deadline, or a deferred completion
    ev_tstamp deadline_at; // 0: none
    bool wait_for_ready;
    bool keep_reply;  // rr_channel_call_sync takes the reply
    rr__child child;  // under rr_call_opts.parent
    uint8_t *payload; // the packed request; kept with a pooled call
    size_t payload_len;
    size_t payload_cap;
    rr_metadata *md; // copies, in the same allocation as payload
    size_t n_md;
    // the outcome
    bool done;
    rr_status status;
    char *message;
    ProtobufCMessage *reply; // in an arena, or malloc'd when keep_reply
    rr_arena arena;          // last: large
};

struct rr_channel {
    struct ev_loop *loop;
    rr_channel_opts opts;
    rr_addr addr;
    char target[128];
    enum ch_state state;
    ch_conn *conn;            // connecting or ready
    ch_conn *old;             // retired, finishing their calls
    rr_conn_scratch *scratch; // the loop's shared read buffer
    ev_timer backoff;
    double backoff_cur;
    uint64_t rng;
    char last_error[160];
    ch_call *live;
    ch_call *pool; // finished calls kept for reuse, through qnext
    size_t n_pool;
    ch_call *q_head, *q_tail;
    uint64_t next_token;
    int busy;
    bool freed;
    // Replies are unpacked here and the arena is reset after each
    // callback: one hot block instead of one per call in flight, whose
    // 64 x 4 KiB showed as cache misses (docs/PERFORMANCE.md).  A callback
    // that runs the loop again leaves the nested replies to their calls'
    // own arenas (replies_busy).
    rr_arena replies;
    bool replies_busy;
};

static char zombie_mark;
#define ZOMBIE ((void *) &zombie_mark)

static void ch_destroy(rr_channel *ch);
static void ch_pump(rr_channel *ch);
static void ch_connect(rr_channel *ch);
static void pc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void pc_parent_cancelled(rr__child *child);

static void
ch_enter(rr_channel *ch)
{
    ch->busy++;
}

static void
ch_leave(rr_channel *ch)
{
    if (--ch->busy == 0 && ch->freed)
        ch_destroy(ch);
}

// ------------------------------------------------------------ the queue

static void
q_push(rr_channel *ch, ch_call *pc, bool front)
{
    pc->queued = true;
    pc->qnext = NULL;
    if (ch->q_head == NULL) {
        ch->q_head = ch->q_tail = pc;
    } else if (front) {
        pc->qnext = ch->q_head;
        ch->q_head = pc;
    } else {
        ch->q_tail->qnext = pc;
        ch->q_tail = pc;
    }
}

static void
q_remove(rr_channel *ch, ch_call *pc)
{
    ch_call *prev = NULL;

    for (ch_call *p = ch->q_head; p != NULL; prev = p, p = p->qnext) {
        if (p != pc)
            continue;
        if (prev != NULL)
            prev->qnext = p->qnext;
        else
            ch->q_head = p->qnext;
        if (ch->q_tail == p)
            ch->q_tail = prev;
        break;
    }
    pc->queued = false;
    pc->qnext = NULL;
}

// ----------------------------------------------------------- completion

// Frees what the call's outcome holds and keeps the call, with its
// payload buffer, for the next one: steady traffic allocates no calls.
static void
pc_free(ch_call *pc)
{
    rr_channel *ch = pc->ch;

    if (pc->message != NULL)
        free(pc->message);
    if (pc->reply != NULL && pc->keep_reply)
        protobuf_c_message_free_unpacked(pc->reply, NULL);
    rr__arena_reset(&pc->arena); // an arena reply goes with it
    if (!ch->freed && ch->n_pool < CALL_POOL_MAX) {
        // The outcome must start empty.  A finished call is off the queue
        // and the wire, its timer stopped and its parent link undone, as
        // pc_alloc made them; ch_call_start sets the rest.  Field by
        // field, because a memset of the whole head showed in profiles.
        pc->prev = NULL;
        pc->done = false;
        pc->status = RR_STATUS_OK;
        pc->message = NULL;
        pc->reply = NULL;
        pc->qnext = ch->pool;
        ch->pool = pc;
        ch->n_pool++;
        return;
    }
    rr__arena_fini(&pc->arena);
    free(pc->payload);
    free(pc);
}

static ch_call *
pc_alloc(rr_channel *ch)
{
    ch_call *pc = ch->pool;

    if (pc == NULL) {
        if ((pc = calloc(1, sizeof(*pc))) == NULL)
            return NULL;
        rr__arena_init(&pc->arena);
        ev_timer_init(&pc->timer, pc_timer_cb, 0., 0.);
        pc->child.cancel = pc_parent_cancelled;
        return pc;
    }
    ch->pool = pc->qnext;
    ch->n_pool--;
    pc->qnext = NULL;
    return pc;
}

// Runs the callback and frees the call.  From the loop only.
static void
pc_deliver(ch_call *pc)
{
    rr_channel *ch = pc->ch;

    rr__timer_stop(ch->loop, &pc->timer);
    rr__call_unlink_child(&pc->child);
    if (pc->prev != NULL)
        pc->prev->next = pc->next;
    else
        ch->live = pc->next;
    if (pc->next != NULL)
        pc->next->prev = pc->prev;

    rr_result res = {
        .status = pc->status,
        .message = pc->message != NULL ? pc->message : "",
        .reply = pc->status == RR_STATUS_OK ? pc->reply : NULL,
    };
    ch_enter(ch);
    if (pc->tramp != NULL)
        pc->tramp(&res, pc->fn, pc->arg);
    else
        pc->cb(&res, pc->arg);
    if (pc->keep_reply)
        pc->reply = NULL; // handed over to rr_channel_call_sync's caller
    pc_free(pc);
    ch_leave(ch);
}

// Takes the call off the wire and the queue: a sent call leaves a ZOMBIE
// and a CANCEL behind.
static void
pc_detach(ch_call *pc, bool send_cancel)
{
    if (pc->queued)
        q_remove(pc->ch, pc);
    ch_conn *cc = pc->cc;
    if (cc == NULL)
        return;
    pc->cc = NULL;
    rr__idmap_del(&cc->calls, pc->id);
    if (cc->c.state != RR_CONN_OPEN)
        return;
    if (rr__idmap_put(&cc->calls, pc->id, ZOMBIE) != RR_OK)
        return; // out of memory: the late reply will just be unknown
    if (send_cancel && rr__frame_put_cancel(&cc->c.out, pc->id) == RR_OK)
        rr__conn_queued(&cc->c);
}

// Decides the call's outcome.  now: run the callback at once (we are in a
// loop callback); else from the loop's next iteration.
static void
pc_finish(ch_call *pc, rr_status status, const char *msg, bool now)
{
    if (pc->done)
        return;
    pc->done = true;
    pc->status = status;
    pc->message = msg != NULL && *msg != '\0' ? strdup(msg) : NULL;
    pc_detach(pc, status != RR_STATUS_OK && status != RR_STATUS_UNAVAILABLE);
    if (now) {
        pc_deliver(pc);
        return;
    }
    ev_timer_stop(pc->ch->loop, &pc->timer);
    ev_timer_set(&pc->timer, 0., 0.);
    ev_timer_start(pc->ch->loop, &pc->timer);
}

static void
pc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    ch_call *pc = RR_CONTAINER_OF(w, ch_call, timer);
    rr_channel *ch = pc->ch;

    ch_enter(ch);
    if (pc->done)
        pc_deliver(pc);
    else
        pc_finish(pc, RR_STATUS_DEADLINE_EXCEEDED, "deadline exceeded", true);
    ch_pump(ch); // a zombie may have freed no slot, but a queued call may go
    ch_leave(ch);
}

static void
pc_parent_cancelled(rr__child *child)
{
    ch_call *pc = RR_CONTAINER_OF(child, ch_call, child);

    pc_finish(pc, RR_STATUS_CANCELLED, "parent call cancelled", false);
}

// ------------------------------------------------------------- sending

// Frames a request with user metadata through protobuf-c.
static int
pc_put_meta(ch_conn *cc, ch_call *pc, uint32_t id, uint64_t timeout_us)
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
    int rv = rr__call_put_raw(&cc->c.out, RR_FRAME_REQUEST, id, &meta.base,
                              pc->payload, pc->payload_len,
                              cc->c.peer.max_frame_size);
    free(ents_heap);
    return rv;
}

// Frames the call onto cc.  Returns RR_OK, or RR_EAGAIN-like 1 when cc
// cannot take it now (IDs exhausted), or finishes the call on a hard error.
static int
pc_send(ch_conn *cc, ch_call *pc)
{
    rr_channel *ch = cc->ch;
    uint64_t timeout_us = 0;
    int rv;

    if (cc->next_id > UINT32_MAX) { // every ID used on this connection
        cc->retired = true;
        return 1;
    }
    if (pc->deadline_at > 0) {
        double left = (pc->deadline_at - ev_now(ch->loop)) * 1e6;
        timeout_us = left >= 1 ? (uint64_t) left : 1;
    }
    uint32_t id = (uint32_t) cc->next_id;
    if (pc->n_md == 0) { // the common form, without protobuf-c
        const char *name = pc->m->full_name;
        rr_request_head h = {name, strlen(name), timeout_us};
        rv = rr__request_put(&cc->c.out, id, &h, pc->payload, pc->payload_len,
                             cc->c.peer.max_frame_size);
    } else {
        rv = pc_put_meta(cc, pc, id, timeout_us);
    }
    if (rv != RR_OK) {
        char msg[160];
        if (rv == RR_EMSGSIZE)
            snprintf(msg, sizeof(msg),
                     "request of %zu bytes exceeds the server's %" PRIu32
                     "-byte limit",
                     pc->payload_len, cc->c.peer.max_frame_size);
        else
            snprintf(msg, sizeof(msg), "cannot queue the request: %s",
                     rr_strerror(rv));
        pc_finish(pc, RR_STATUS_RESOURCE_EXHAUSTED, msg, true);
        return rv;
    }
    if (rr__idmap_put(&cc->calls, id, pc) != RR_OK) {
        // Framed but untracked: the reply will be dropped as unknown.
        pc_finish(pc, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory", true);
        return RR_ENOMEM;
    }
    cc->next_id++;
    pc->cc = cc;
    pc->id = id;
    rr__conn_queued(&cc->c);
    return RR_OK;
}

// Whether cc (the channel's connection, or NULL) takes a call now: not
// retired, and under the server's concurrency limit.
static bool
cc_can_send(const ch_conn *cc)
{
    return cc != NULL && !cc->retired &&
           cc->calls.count < cc->c.peer.max_concurrent_calls;
}

// Sends queued calls while the connection is ready and has room.
static void
ch_pump(rr_channel *ch)
{
    ch_conn *cc = ch->conn;

    while (ch->q_head != NULL && ch->state == CH_READY && cc_can_send(cc)) {
        ch_call *pc = ch->q_head;
        q_remove(ch, pc);
        if (pc_send(cc, pc) == 1) {
            q_push(ch, pc, true);
            break; // retired: a new connection takes the queue
        }
    }
    if (cc != NULL && cc->retired && ch->q_head != NULL) {
        ch->conn = NULL;
        cc->next_old = ch->old;
        ch->old = cc;
        ch->state = CH_IDLE;
        ch_connect(ch);
    }
}

// Fails the queued calls that do not wait for ready.
static void
ch_fail_queue(rr_channel *ch, const char *why)
{
    ch_call *pc = ch->q_head, *next;

    for (; pc != NULL; pc = next) {
        next = pc->qnext;
        if (!pc->wait_for_ready)
            pc_finish(pc, RR_STATUS_UNAVAILABLE, why, true);
    }
}

// ----------------------------------------------------------- reconnect

static double
ch_jitter(rr_channel *ch)
{
    ch->rng ^= ch->rng << 13; // xorshift64
    ch->rng ^= ch->rng >> 7;
    ch->rng ^= ch->rng << 17;
    return (double) (ch->rng >> 11) / (double) (1ull << 53) * 2.0 - 1.0;
}

static void
ch_backoff(rr_channel *ch)
{
    double d =
        ch->backoff_cur * (1.0 + ch->opts.backoff_jitter * ch_jitter(ch));
    ch->state = CH_BACKOFF;
    ch->backoff_cur *= ch->opts.backoff_multiplier;
    if (ch->backoff_cur > ch->opts.backoff_max)
        ch->backoff_cur = ch->opts.backoff_max;
    rr__log(RR_LOG_INFO, "%s: reconnecting in %.3f s", ch->target, d);
    ev_timer_set(&ch->backoff, d > 0 ? d : 0., 0.);
    ev_timer_start(ch->loop, &ch->backoff);
}

static void
ch_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_channel *ch = RR_CONTAINER_OF(w, rr_channel, backoff);

    ch_enter(ch);
    ch->state = CH_IDLE;
    if (ch->q_head != NULL)
        ch_connect(ch);
    ch_leave(ch);
}

// ------------------------------------------------------ the connection

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
        if (rr__meta_unpack(&rawrpc__v1__response_meta__descriptor, f, NULL,
                            &m) != RR_OK) {
            pc_finish(pc, RR_STATUS_INTERNAL,
                      "response metadata does not parse", true);
            return;
        }
        Rawrpc__V1__ResponseMeta *rm = (Rawrpc__V1__ResponseMeta *) m;
        status = rm->status <= RR_STATUS_MAX ? (rr_status) rm->status
                                             : RR_STATUS_UNKNOWN;
        msg = rm->message;
    }
    rr_channel *ch = cc->ch;
    bool shared = false;
    if (status == RR_STATUS_OK) {
        // Into an arena: no malloc; the blocking API hands the reply to
        // its caller, so that one is malloc'd.
        shared = !pc->keep_reply && !ch->replies_busy;
        ProtobufCAllocator *alloc = pc->keep_reply ? NULL
                                    : shared       ? &ch->replies.alloc
                                                   : &pc->arena.alloc;
        ch->replies_busy |= shared;
        pc->reply = protobuf_c_message_unpack(pc->m->output, alloc,
                                              rr__frame_payload_len(f),
                                              rr__frame_payload(f));
        if (pc->reply == NULL) {
            snprintf(buf, sizeof(buf), "reply does not parse as %s",
                     pc->m->output->name);
            status = RR_STATUS_INTERNAL;
            msg = buf;
        }
    }
    pc_finish(pc, status, msg, true); // the callback runs here
    if (shared) {
        rr__arena_reset(&ch->replies);
        ch->replies_busy = false;
    }
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
}

// Ends a retired connection whose calls are done: GOAWAY NO_ERROR, then
// the graceful close (PROTOCOL.md section 6).
static void
cc_retire(ch_conn *cc)
{
    if (cc->c.state == RR_CONN_OPEN &&
        rr__frame_put_goaway(&cc->c.out, 0, RR_GOAWAY_NO_ERROR,
                             "client done with this connection") == RR_OK) {
        rr__conn_queued(&cc->c);
        rr__conn_finish(&cc->c);
        return;
    }
    rr__conn_close(&cc->c, RR_OK, "retired connection done");
}

// GOAWAY: calls above last_call_id never ran, so they go back to the
// queue for a new connection; the rest finish here.
static void
cc_goaway(ch_conn *cc, const rr_frame *f)
{
    rr_channel *ch = cc->ch;
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
    for (size_t i = 0; i < n; i++) {
        if (ids[i] <= g.last_call_id)
            continue;
        void *v = rr__idmap_del(&cc->calls, ids[i]);
        if (v != ZOMBIE) {
            ch_call *pc = v;
            pc->cc = NULL;
            q_push(ch, pc, true); // it never ran: safe to send again
        }
    }
    free(ids);
    if (ch->conn == cc) {
        ch->conn = NULL;
        cc->next_old = ch->old;
        ch->old = cc;
        ch->state = CH_IDLE;
    }
    if (cc->calls.count == 0)
        cc_retire(cc);
    if (ch->q_head != NULL && ch->state == CH_IDLE)
        ch_connect(ch);
}

static void
cc_on_frame(rr_conn *c, const rr_frame *f)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);
    rr_channel *ch = cc->ch;

    ch_enter(ch);
    switch (f->type) {
    case RR_FRAME_RESPONSE:
        cc_response(cc, f);
        if (cc->retired && cc->calls.count == 0)
            cc_retire(cc);
        else if (ch->q_head != NULL) // a slot is free: the queue may move
            ch_pump(ch);
        break;
    case RR_FRAME_GOAWAY:
        cc_goaway(cc, f);
        break;
    default:
        rr__conn_fail(c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "a server sent a %s frame", rr__frame_type_name(f->type));
    }
    ch_leave(ch);
}

static void
cc_on_open(rr_conn *c)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);
    rr_channel *ch = cc->ch;

    ch_enter(ch);
    cc->opened = true;
    if (ch->conn == cc) {
        ch->state = CH_READY;
        ch->backoff_cur = ch->opts.backoff_initial;
        rr__log(RR_LOG_DEBUG, "%s: connected", ch->target);
        ch_pump(ch);
    }
    ch_leave(ch);
}

static void
cc_on_close(rr_conn *c, int err, const char *why)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);
    rr_channel *ch = cc->ch;
    void *v;

    ch_enter(ch);
    if (err != RR_OK)
        rr__log(RR_LOG_INFO, "%s: connection lost: %s", ch->target, why);
    snprintf(ch->last_error, sizeof(ch->last_error), "%s", why);
    uint32_t id;
    while ((v = rr__idmap_any(&cc->calls, &id)) != NULL) {
        rr__idmap_del(&cc->calls, id);
        if (v == ZOMBIE)
            continue;
        ch_call *pc = v;
        pc->cc = NULL;
        pc_finish(pc, RR_STATUS_UNAVAILABLE, why, true);
    }
    if (ch->conn == cc) {
        ch->conn = NULL;
        if (ch->freed) {
            // nothing: the channel is going away
        } else if (cc->opened && ch->q_head == NULL) {
            ch->state = CH_IDLE; // the next call reconnects at once
        } else {
            if (!cc->opened)
                ch_fail_queue(ch, why); // transient failure: fail fast
            ch_backoff(ch);
        }
    } else {
        for (ch_conn **p = &ch->old; *p != NULL; p = &(*p)->next_old) {
            if (*p == cc) {
                *p = cc->next_old;
                break;
            }
        }
    }
    ch_leave(ch);
}

static void
cc_on_free(rr_conn *c)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);

    rr__idmap_fini(&cc->calls);
    free(cc);
}

static const rr_conn_ops cc_ops = {
    .on_open = cc_on_open,
    .on_frame = cc_on_frame,
    .on_close = cc_on_close,
    .on_free = cc_on_free,
};

static void
ch_connect(rr_channel *ch)
{
    rr_conn_cfg cfg;
    int fd = socket(ch->addr.ss.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bool connecting = false;

    if (fd >= 0 &&
        connect(fd, (struct sockaddr *) &ch->addr.ss, ch->addr.len) != 0) {
        if (errno == EINPROGRESS) {
            connecting = true;
        } else {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        snprintf(ch->last_error, sizeof(ch->last_error),
                 "connect to %s failed: %s", ch->target, strerror(errno));
        rr__log(RR_LOG_INFO, "%s", ch->last_error);
        ch_fail_queue(ch, ch->last_error);
        ch_backoff(ch);
        return;
    }
    ch_conn *cc = calloc(1, sizeof(*cc));
    if (cc == NULL) {
        close(fd);
        ch_fail_queue(ch, "out of memory");
        ch_backoff(ch);
        return;
    }
    cc->ch = ch;
    cc->next_id = 1;
    rr__idmap_init(&cc->calls);
    ch->conn = cc;
    ch->state = CH_CONNECTING;

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

// ---------------------------------------------------------------- calls

// Copies the packed request and the metadata into one allocation.
static int
pc_pack(ch_call *pc, const ProtobufCMessage *req, const rr_call_opts *o)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    size_t md_bytes = 0;

    for (size_t i = 0; i < o->n_metadata; i++)
        md_bytes += strlen(o->metadata[i].key) + 1 + o->metadata[i].value_len;
    size_t md_at = (n + 15) & ~(size_t) 15;
    size_t total = md_at + o->n_metadata * sizeof(rr_metadata) + md_bytes;
    if (pc->payload == NULL || total > pc->payload_cap) {
        size_t cap = total > 64 ? total : 64;
        uint8_t *np = malloc(cap);
        if (np == NULL)
            return RR_ENOMEM;
        free(pc->payload);
        pc->payload = np;
        pc->payload_cap = cap;
    }
    uint8_t *p = pc->payload;
    protobuf_c_message_pack(req, p);
    pc->payload_len = n;
    pc->md = (rr_metadata *) (void *) (p + md_at);
    pc->n_md = o->n_metadata;
    char *s = (char *) (pc->md + o->n_metadata);
    for (size_t i = 0; i < o->n_metadata; i++) {
        size_t klen = strlen(o->metadata[i].key);
        memcpy(s, o->metadata[i].key, klen + 1);
        pc->md[i].key = s;
        s += klen + 1;
        if (o->metadata[i].value_len > 0)
            memcpy(s, o->metadata[i].value, o->metadata[i].value_len);
        pc->md[i].value = (const uint8_t *) s;
        pc->md[i].value_len = o->metadata[i].value_len;
        s += o->metadata[i].value_len;
    }
    return RR_OK;
}

// The metadata's packed size must fit the budget (and meta_len).
static bool
md_fits(const rr_channel *ch, const rr_call_opts *o)
{
    size_t bytes = 0;

    for (size_t i = 0; i < o->n_metadata; i++) {
        if (o->metadata[i].key == NULL || o->metadata[i].key[0] == '\0')
            return false;
        bytes += strlen(o->metadata[i].key) + o->metadata[i].value_len + 16;
    }
    return bytes <= ch->opts.max_metadata_size;
}

// Where the call goes now that it exists.
static void
ch_route(rr_channel *ch, ch_call *pc)
{
    switch (ch->state) {
    case CH_READY:
        // Straight onto the wire when no call waits ahead of it.
        if (ch->q_head == NULL && cc_can_send(ch->conn) &&
            pc_send(ch->conn, pc) != 1)
            break;
        q_push(ch, pc, false);
        ch_pump(ch);
        break;
    case CH_IDLE:
        q_push(ch, pc, false);
        ch_connect(ch);
        break;
    case CH_CONNECTING:
        q_push(ch, pc, false);
        break;
    case CH_BACKOFF:
        if (pc->wait_for_ready)
            q_push(ch, pc, false);
        else
            pc_finish(pc, RR_STATUS_UNAVAILABLE, ch->last_error, false);
        break;
    }
}

// How a call reports its outcome: a plain callback, or a generated
// trampoline with the typed callback it calls.
typedef struct ch_done {
    rr_result_cb cb;
    rr_stub_result tramp;
    rr_stub_fn fn;
    void *arg;
} ch_done;

static int
ch_call_start(rr_channel *ch, const rr_method *method,
              const ProtobufCMessage *req, const rr_call_opts *opts,
              const ch_done *done, uint64_t *token, bool keep_reply)
{
    static const rr_call_opts no_opts;
    const rr_call_opts *o = opts != NULL ? opts : &no_opts;

    if (ch == NULL || ch->freed || method == NULL || req == NULL ||
        (done->cb == NULL && (done->tramp == NULL || done->fn == NULL)) ||
        req->descriptor != method->input ||
        (o->n_metadata > 0 && o->metadata == NULL))
        return RR_EINVAL;
    if (!md_fits(ch, o)) {
        rr__log(RR_LOG_ERROR, "%s: metadata over the %zu-byte budget",
                method->full_name, ch->opts.max_metadata_size);
        return RR_EINVAL;
    }
    ch_call *pc = pc_alloc(ch);
    if (pc == NULL)
        return RR_ENOMEM;
    pc->ch = ch;
    if (pc_pack(pc, req, o) != RR_OK) {
        pc_free(pc);
        return RR_ENOMEM;
    }
    pc->m = method;
    pc->cb = done->cb;
    pc->tramp = done->tramp;
    pc->fn = done->fn;
    pc->arg = done->arg;
    pc->keep_reply = keep_reply;
    pc->wait_for_ready = o->wait_for_ready;
    pc->token = ++ch->next_token;
    pc->next = ch->live;
    if (ch->live != NULL)
        ch->live->prev = pc;
    ch->live = pc;
    if (token != NULL)
        *token = pc->token;

    ev_tstamp now = ev_now(ch->loop);
    double t = o->timeout > 0 ? o->timeout : ch->opts.default_timeout;
    pc->deadline_at = t > 0 ? now + t : 0;
    if (o->parent != NULL) {
        if (rr_call_cancelled(o->parent)) {
            pc_finish(pc, RR_STATUS_CANCELLED, "parent call cancelled", false);
            return RR_OK;
        }
        double left = rr_call_remaining(o->parent);
        if (isfinite(left) &&
            (pc->deadline_at == 0 || now + left < pc->deadline_at))
            pc->deadline_at = now + left; // never outlive the parent
        rr__call_link_child(o->parent, &pc->child);
    }
    if (pc->deadline_at > 0) {
        if (pc->deadline_at <= now) {
            pc_finish(pc, RR_STATUS_DEADLINE_EXCEEDED, "deadline exceeded",
                      false);
            return RR_OK;
        }
        ev_timer_set(&pc->timer, pc->deadline_at - now, 0.);
        ev_timer_start(ch->loop, &pc->timer);
    }
    ch_enter(ch);
    ch_route(ch, pc);
    ch_leave(ch);
    return RR_OK;
}

int
rr_channel_call(rr_channel *ch, const rr_method *method,
                const ProtobufCMessage *req, const rr_call_opts *opts,
                rr_result_cb cb, void *arg, uint64_t *token)
{
    ch_done done = {.cb = cb, .arg = arg};

    return ch_call_start(ch, method, req, opts, &done, token, false);
}

int
rr_stub_call(rr_channel *ch, const rr_method *method,
             const ProtobufCMessage *req, const rr_call_opts *opts,
             rr_stub_result tramp, rr_stub_fn fn, void *arg, uint64_t *token)
{
    ch_done done = {.tramp = tramp, .fn = fn, .arg = arg};

    return ch_call_start(ch, method, req, opts, &done, token, false);
}

int
rr_channel_cancel(rr_channel *ch, uint64_t token)
{
    for (ch_call *pc = ch->live; pc != NULL; pc = pc->next) {
        if (pc->token == token && !pc->done) {
            pc_finish(pc, RR_STATUS_CANCELLED, "cancelled by the caller",
                      false);
            return RR_OK;
        }
    }
    return RR_EINVAL;
}

typedef struct sync_state {
    bool done;
    rr_status status;
    char *message;
    ProtobufCMessage *reply;
} sync_state;

static void
sync_cb(const rr_result *res, void *arg)
{
    sync_state *st = arg;

    st->done = true;
    st->status = res->status;
    st->message = strdup(res->message);
    st->reply = (ProtobufCMessage *) res->reply; // kept: keep_reply
}

rr_status
rr_channel_call_sync(rr_channel *ch, const rr_method *method,
                     const ProtobufCMessage *req, const rr_call_opts *opts,
                     ProtobufCMessage **reply, char **message)
{
    sync_state st = {0};

    if (reply != NULL)
        *reply = NULL;
    if (message != NULL)
        *message = NULL;
    if (ch == NULL || ev_depth(ch->loop) > 0) {
        rr__log(RR_LOG_ERROR, "rr_channel_call_sync called from inside a "
                              "loop callback; use rr_channel_call");
        return RR_STATUS_FAILED_PRECONDITION;
    }
    // The loop, not ch: a callback may free the channel while we wait
    // (which completes our call too).
    struct ev_loop *loop = ch->loop;
    ch_done done = {.cb = sync_cb, .arg = &st};
    if (ch_call_start(ch, method, req, opts, &done, NULL, true) != RR_OK)
        return RR_STATUS_INVALID_ARGUMENT;
    while (!st.done)
        ev_run(loop, EVRUN_ONCE);
    if (reply != NULL)
        *reply = st.reply;
    else if (st.reply != NULL)
        protobuf_c_message_free_unpacked(st.reply, NULL);
    if (message != NULL)
        *message = st.message;
    else
        free(st.message);
    return st.status;
}

int
rr__channel_set_next_id(rr_channel *ch, uint32_t id)
{
    if (ch->conn == NULL || id == 0)
        return RR_EINVAL;
    ch->conn->next_id = id; // 64-bit: never wraps to a used ID
    return RR_OK;
}

bool
rr_channel_connected(const rr_channel *ch)
{
    return ch->state == CH_READY;
}

// ----------------------------------------------------------- lifetime

void
rr_channel_opts_init(rr_channel_opts *o)
{
    o->connect_timeout = 20.0;
    o->backoff_initial = 1.0;
    o->backoff_multiplier = 1.6;
    o->backoff_jitter = 0.2;
    o->backoff_max = 120.0;
    o->default_timeout = 0;
    o->max_frame_size = RR_DEFAULT_MAX_FRAME_SIZE;
    o->heartbeat_interval = 30.0;
    o->heartbeat_timeout = 20.0;
    o->max_metadata_size = RR_DEFAULT_MAX_METADATA_SIZE;
    o->tcp_keepalive = false;
}

int
rr_channel_new(rr_channel **out, struct ev_loop *loop, const char *target,
               const rr_channel_opts *opts)
{
    char msg[160];

    if (out == NULL || loop == NULL || target == NULL)
        return RR_EINVAL;
    rr_channel *ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return RR_ENOMEM;
    if (opts != NULL)
        ch->opts = *opts;
    else
        rr_channel_opts_init(&ch->opts);
    if (ch->opts.max_frame_size < RR_MIN_MAX_FRAME_SIZE ||
        ch->opts.connect_timeout <= 0 || ch->opts.backoff_multiplier < 1 ||
        ch->opts.heartbeat_interval < 0 || ch->opts.heartbeat_timeout <= 0 ||
        ch->opts.max_metadata_size > RR_META_MAX) {
        free(ch);
        return RR_EINVAL;
    }
    if (rr__addr_parse(target, &ch->addr, msg, sizeof(msg)) != RR_OK) {
        rr__log(RR_LOG_ERROR, "channel: %s", msg);
        free(ch);
        return RR_EINVAL;
    }
    if ((ch->scratch = rr__conn_scratch_get(loop)) == NULL) {
        free(ch);
        return RR_ENOMEM;
    }
    ch->loop = loop;
    snprintf(ch->target, sizeof(ch->target), "%s", target);
    ch->state = CH_IDLE;
    ch->backoff_cur = ch->opts.backoff_initial;
    ch->rng = (uint64_t) (uintptr_t) ch ^ (uint64_t) (ev_time() * 1e6) ^
              0x9E3779B97F4A7C15ull;
    if (ch->rng == 0)
        ch->rng = 1;
    ev_timer_init(&ch->backoff, ch_backoff_cb, 0., 0.);
    rr__arena_init(&ch->replies);
    *out = ch;
    return RR_OK;
}

static void
ch_destroy(rr_channel *ch)
{
    while (ch->pool != NULL) {
        ch_call *next = ch->pool->qnext;
        rr__arena_fini(&ch->pool->arena);
        free(ch->pool->payload);
        free(ch->pool);
        ch->pool = next;
    }
    rr__conn_scratch_unref(ch->scratch);
    rr__arena_fini(&ch->replies);
    free(ch);
}

void
rr_channel_free(rr_channel *ch)
{
    if (ch == NULL || ch->freed)
        return;
    ch_enter(ch);
    ch->freed = true;
    ev_timer_stop(ch->loop, &ch->backoff);
    // Every pending call completes now, before this returns.
    while (ch->live != NULL) {
        // pc_deliver unlinks pc before freeing it, so ch->live moves on;
        // the analyzer cannot see that across the call.
        ch_call *pc = ch->live;
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        if (!pc->done)
            pc_finish(pc, RR_STATUS_UNAVAILABLE, "channel freed", true);
        else
            pc_deliver(pc);
    }
    if (ch->conn != NULL)
        rr__conn_close(&ch->conn->c, RR_ECLOSED, "channel freed");
    while (ch->old != NULL)
        rr__conn_close(&ch->old->c, RR_ECLOSED, "channel freed");
    ch_leave(ch);
}
