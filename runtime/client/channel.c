// SPDX-License-Identifier: MIT
//
// channel.c -- rr_channel: the client side.  One connection at a time
// carries every call, multiplexed by call ID; calls wait in a queue while
// the channel connects, while the server's concurrency limit is reached,
// or while the connection's output holds OUT_HIGH bytes not yet written
// (they go again once it is down to OUT_LOW).  A lost connection is
// replaced after an exponential backoff with jitter (gRPC's
// connection-backoff defaults).
//
// Completion: the outcome of a call is decided once (pc_settle: the first
// of reply, failure, cancel or deadline wins) and then delivered.  A
// RESPONSE is delivered at once, from the read callback; every other
// outcome goes through the loop's deferred queue (defer.h), so no path --
// a connect refused inside rr_channel_call, a request too large, a cancel
// -- runs a callback before the function that caused it returns, and no
// loop of the channel's own runs user code except rr_channel_free's,
// which delivers every pending call before it returns.
//
// Call IDs are never reused on a connection (PROTOCOL.md section 6): a
// call given up on (deadline, cancel) leaves a ZOMBIE in the ID map until
// its late RESPONSE arrives, so the in-flight count matches the server's
// and the late reply is recognised and dropped.  A connection whose IDs
// are used up takes no more calls and closes once its last one is done.

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/container.h"
#include "util/evtimer.h"
#include "transport/addr.h"
#include "util/arena.h"
#include "server/child.h"
#include "client/channel.h"
#include "transport/conn.h"
#include "util/defer.h"
#include "util/errmap.h"
#include "util/idmap.h"
#include "util/log.h"
#include "codec/meta.h"
#include "util/opts.h"
#include "util/poison.h"
#include "rawrpc/rawrpc.h"
#include "rawrpc/stub.h"

#define MD_ON_STACK   8
#define CALL_POOL_MAX 256
// Pooled calls keep their payload buffers, so steady traffic allocates
// nothing, within a budget for the whole pool: a burst of big requests
// must not pin its memory for the channel's life, and 64 calls of 64 KiB
// in flight must not allocate per call either (docs/PERFORMANCE.md).
#define POOL_PAYLOAD_BUDGET ((size_t) 8 * 1024 * 1024)
// Calls wait in the queue while the connection's output holds this much
// (the server's default high-water mark) and go again once it has
// drained to OUT_LOW.  One frame always goes when under OUT_HIGH: the
// output's cap leaves room for the largest the server takes.
#define OUT_HIGH ((size_t) 4 * 1024 * 1024)
#define OUT_LOW  ((size_t) 1024 * 1024)
// pc_put_meta's answer for metadata over the server's limit.
#define META_OVER 1

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
    bool goaway_sent;  // cc_retire ran: closing
};

struct ch_call {
    rr_channel *ch;
    ch_call *prev, *next;   // the channel's live calls
    ch_call *qprev, *qnext; // the send queue (qnext also links the pool)
    bool queued;
    ch_conn *cc; // set while sent and unanswered
    uint32_t id;
    uint64_t token; // 0: none was asked for
    const rr_method *m;
    rr_result_cb cb;      // or:
    rr_stub_result tramp; // a generated trampoline with
    rr_stub_fn fn;        // its typed callback
    void *arg;
    ev_timer timer;         // the deadline
    rr__defer_node deliver; // the outcome, delivered from the loop
    ev_tstamp deadline_at;  // 0: none
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
    ch_conn *conn;       // connecting or ready
    ch_conn *old;        // retired, finishing their calls
    rr_scratch *scratch; // the loop's shared read buffer
    rr__defer *defer;    // the loop's deferred-completion queue
    ev_timer backoff;
    ev_prepare drain; // while queued calls wait for the output to drain
    double backoff_cur;
    uint64_t rng;
    char last_error[160];
    ch_call *live;
    ch_call *pool; // finished calls kept for reuse, through qnext
    size_t n_pool;
    size_t pool_bytes; // payload buffers the pooled calls keep
    ch_call *q_head, *q_tail;
    size_t q_len;
    rr_idmap tokens; // a token's low 32 bits -> its call, while it lives
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
static void cc_stop_using(ch_conn *cc);
static void pc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void pc_deliver_cb(rr__defer_node *node);
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
    ch->q_len++;
    if (front) {
        pc->qprev = NULL;
        pc->qnext = ch->q_head;
        if (ch->q_head != NULL)
            ch->q_head->qprev = pc;
        else
            ch->q_tail = pc;
        ch->q_head = pc;
    } else {
        pc->qnext = NULL;
        pc->qprev = ch->q_tail;
        if (ch->q_tail != NULL)
            ch->q_tail->qnext = pc;
        else
            ch->q_head = pc;
        ch->q_tail = pc;
    }
}

static void
q_remove(rr_channel *ch, ch_call *pc)
{
    if (pc->qprev != NULL)
        pc->qprev->qnext = pc->qnext;
    else
        ch->q_head = pc->qnext;
    if (pc->qnext != NULL)
        pc->qnext->qprev = pc->qprev;
    else
        ch->q_tail = pc->qprev;
    pc->qprev = pc->qnext = NULL;
    pc->queued = false;
    ch->q_len--;
}

// ----------------------------------------------------------- completion

// Frees what the call's outcome holds and keeps the call, with a small
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
        // and the wire, its timer stopped, its deferred delivery and its
        // parent link undone, as pc_alloc made them; ch_call_start sets
        // the rest.  Field by field, because a memset of the whole head
        // showed in profiles.
        pc->prev = NULL;
        pc->token = 0;
        pc->done = false;
        pc->status = RR_STATUS_OK;
        pc->message = NULL;
        pc->reply = NULL;
        if (ch->pool_bytes + pc->payload_cap > POOL_PAYLOAD_BUDGET) {
            free(pc->payload);
            pc->payload = NULL;
            pc->payload_cap = 0;
        }
        ch->pool_bytes += pc->payload_cap;
        pc->qnext = ch->pool;
        ch->pool = pc;
        ch->n_pool++;
        RR_POISON(pc, sizeof(*pc)); // a use after delivery is caught
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
        rr__defer_node_init(&pc->deliver, pc_deliver_cb);
        pc->child.cancel = pc_parent_cancelled;
        return pc;
    }
    RR_UNPOISON(pc, sizeof(*pc));
    ch->pool = pc->qnext;
    ch->n_pool--;
    ch->pool_bytes -= pc->payload_cap;
    pc->qnext = NULL;
    return pc;
}

// Runs the callback of a settled call and frees the call.  From the
// loop, or from rr_channel_free.
static void
pc_deliver(ch_call *pc)
{
    rr_channel *ch = pc->ch;

    rr__defer_cancel(ch->defer, &pc->deliver);
    rr__call_unlink_child(&pc->child);
    if (pc->token != 0)
        rr__idmap_del(&ch->tokens, (uint32_t) pc->token);
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

static void
pc_deliver_cb(rr__defer_node *node)
{
    pc_deliver(RR_CONTAINER_OF(node, ch_call, deliver));
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

// Decides the call's outcome, once: the first of reply, failure, cancel
// and deadline wins.  Returns false when the call was already settled.
// Runs no user code.
static bool
pc_settle(ch_call *pc, rr_status status, const char *msg)
{
    if (pc->done)
        return false;
    pc->done = true;
    pc->status = status;
    pc->message = msg != NULL && *msg != '\0' ? strdup(msg) : NULL;
    rr__timer_stop(pc->ch->loop, &pc->timer);
    pc_detach(pc, status != RR_STATUS_OK && status != RR_STATUS_UNAVAILABLE);
    return true;
}

// Settles the call and delivers it from the loop's deferred queue: never
// before the function that got here returns.  Runs no user code.
static void
pc_finish(ch_call *pc, rr_status status, const char *msg)
{
    if (pc_settle(pc, status, msg))
        rr__defer_post(pc->ch->defer, &pc->deliver);
}

static void
pc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    ch_call *pc = RR_CONTAINER_OF(w, ch_call, timer);

    pc_finish(pc, RR_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
}

static void
pc_parent_cancelled(rr__child *child)
{
    ch_call *pc = RR_CONTAINER_OF(child, ch_call, child);

    pc_finish(pc, RR_STATUS_CANCELLED, "parent call cancelled");
}

// ------------------------------------------------------------- sending

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
pc_send(ch_conn *cc, ch_call *pc)
{
    uint64_t timeout_us = 0;
    size_t meta_len = 0;
    char msg[160];
    int rv;

    if (pc->deadline_at > 0) {
        double left = (pc->deadline_at - ev_now(cc->ch->loop)) * 1e6;
        timeout_us = left >= 1 ? (uint64_t) left : 1;
    }
    uint32_t id = (uint32_t) cc->next_id;
    if (rr__idmap_put(&cc->calls, id, pc) != RR_OK) {
        pc_finish(pc, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
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
        pc_finish(pc, RR_STATUS_RESOURCE_EXHAUSTED, msg);
        return;
    }
    cc->next_id++;
    pc->cc = cc;
    pc->id = id;
    rr__conn_queued(&cc->c);
    if (cc->next_id > UINT32_MAX)
        cc_stop_using(cc); // every ID used: the next call reconnects
}

// Whether cc (the channel's connection, or NULL) takes another call: not
// retired, and under the server's concurrency limit.
static bool
cc_can_take(const ch_conn *cc)
{
    return cc != NULL && !cc->retired &&
           cc->calls.count < cc->c.peer.max_concurrent_calls;
}

// Whether cc's output has room for another request (OUT_HIGH).
static bool
cc_has_room(const ch_conn *cc)
{
    return rr__buf_size(&cc->c.out) < OUT_HIGH;
}

// Sends queued calls while the connection is ready and has room; waits
// for the output to drain (ch_drain_cb) when only that stops it, and
// connects when the channel is idle with calls waiting.  Runs no user
// code.
static void
ch_pump(rr_channel *ch)
{
    if (ch->freed)
        return;
    while (ch->q_head != NULL && ch->state == CH_READY &&
           cc_can_take(ch->conn) && cc_has_room(ch->conn)) {
        ch_call *pc = ch->q_head;
        q_remove(ch, pc);
        pc_send(ch->conn, pc); // may retire ch->conn
    }
    if (ch->q_head == NULL)
        return;
    if (ch->state == CH_IDLE)
        ch_connect(ch);
    else if (ch->state == CH_READY && cc_can_take(ch->conn) &&
             !ev_is_active(&ch->drain))
        ev_prepare_start(ch->loop, &ch->drain);
}

// Before each poll while queued calls wait for the output: once the
// connection has written it down to OUT_LOW (or is gone), pump again.
static void
ch_drain_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void) revents;
    rr_channel *ch = RR_CONTAINER_OF(w, rr_channel, drain);

    if (ch->state == CH_READY && ch->conn != NULL && ch->q_head != NULL &&
        rr__buf_size(&ch->conn->c.out) > OUT_LOW)
        return;
    ev_prepare_stop(loop, w);
    ch_enter(ch);
    ch_pump(ch);
    ch_leave(ch);
}

// Fails the queued calls that do not wait for ready; the others keep
// their order.  Runs no user code: the failures are delivered from the
// loop.
static void
ch_fail_queue(rr_channel *ch, const char *why)
{
    for (size_t n = ch->q_len; n > 0; n--) {
        ch_call *pc = ch->q_head;
        q_remove(ch, pc);
        if (pc->wait_for_ready)
            q_push(ch, pc, false);
        else
            pc_finish(pc, RR_STATUS_UNAVAILABLE, why);
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
    if (ch->freed)
        return; // nothing may start on a channel going away
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
                pc_settle(pc, RR_STATUS_RESOURCE_EXHAUSTED,
                          "out of memory for the response metadata");
            else
                pc_settle(pc, RR_STATUS_INTERNAL,
                          "response metadata does not parse");
            pc_deliver(pc);
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
        int rv = rr__unpack(pc->m->output, alloc, rr__frame_payload_len(f),
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
    pc_settle(pc, status, msg);
    pc_deliver(pc); // the callback runs here
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
    rr_channel *ch = cc->ch;

    cc->retired = true;
    if (ch->conn == cc) {
        ch->conn = NULL;
        cc->next_old = ch->old;
        ch->old = cc;
        ch->state = CH_IDLE; // the next call, or ch_pump, reconnects
    }
    if (cc->calls.count == 0)
        cc_retire(cc);
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
    cc_stop_using(cc);
    ch_pump(ch);
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
        if (ch->freed)
            break; // by the callback: its connections are closed
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

// Fails the connection's calls (from the loop: this runs no user code,
// so nothing it walks can be freed under it) and decides what the
// channel does next.
static void
cc_on_close(rr_conn *c, int err, const char *why)
{
    ch_conn *cc = RR_CONTAINER_OF(c, ch_conn, c);
    rr_channel *ch = cc->ch;
    rr_idmap_cursor cur = {0};
    void *v;

    ch_enter(ch);
    if (err != RR_OK)
        rr__log(RR_LOG_INFO, "%s: connection lost: %s", ch->target, why);
    snprintf(ch->last_error, sizeof(ch->last_error), "%s", why);
    while ((v = rr__idmap_pop(&cc->calls, &cur, NULL)) != NULL) {
        if (v == ZOMBIE)
            continue;
        ch_call *pc = v;
        pc->cc = NULL;
        pc_finish(pc, RR_STATUS_UNAVAILABLE, why);
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

// Why the call's metadata is refused, or NULL: an empty key, a key in
// the reserved "rr-" space (PROTOCOL.md section 5.2), or more than the
// channel's budget (whose estimate bounds the packed size, and so
// meta_len).
static const char *
md_refuse(const rr_channel *ch, const rr_call_opts *o)
{
    size_t bytes = 0;

    for (size_t i = 0; i < o->n_metadata; i++) {
        const char *key = o->metadata[i].key;
        if (key == NULL || key[0] == '\0')
            return "a metadata key is empty";
        if (strncmp(key, "rr-", 3) == 0)
            return "metadata keys starting with \"rr-\" are reserved";
        if (o->metadata[i].value_len > 0 && o->metadata[i].value == NULL)
            return "a metadata value is NULL";
        bytes += strlen(key) + o->metadata[i].value_len + 16;
    }
    return bytes <= ch->opts.max_metadata_size ? NULL
                                               : "metadata over the budget";
}

// Where the call goes now that it exists.  Runs no user code: a call
// that fails here is delivered from the loop.
static void
ch_route(rr_channel *ch, ch_call *pc)
{
    switch (ch->state) {
    case CH_READY:
        // Straight onto the wire when no call waits ahead of it.
        if (ch->q_head == NULL && cc_can_take(ch->conn) &&
            cc_has_room(ch->conn)) {
            pc_send(ch->conn, pc);
            break;
        }
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
            pc_finish(pc, RR_STATUS_UNAVAILABLE, ch->last_error);
        break;
    }
}

// A token for rr_channel_cancel: unique for the channel's life (64
// bits), found by its low 32 bits, which skip 0 and those of live
// tokens.
static int
pc_take_token(rr_channel *ch, ch_call *pc)
{
    uint64_t t;

    do
        t = ++ch->next_token;
    while ((uint32_t) t == 0 ||
           rr__idmap_get(&ch->tokens, (uint32_t) t) != NULL);
    if (rr__idmap_put(&ch->tokens, (uint32_t) t, pc) != RR_OK)
        return RR_ENOMEM;
    pc->token = t;
    return RR_OK;
}

// How a call reports its outcome: a plain callback, or a generated
// trampoline with the typed callback it calls.
typedef struct ch_done {
    rr_result_cb cb;
    rr_stub_result tramp;
    rr_stub_fn fn;
    void *arg;
} ch_done;

// Starts a call.  Returns RR_OK, RR_EINVAL or RR_ENOMEM, with *why saying
// what was wrong; on an error nothing is left behind and the callback
// never runs.
static int
ch_call_start(rr_channel *ch, const rr_method *method,
              const ProtobufCMessage *req, const rr_call_opts *opts,
              const ch_done *done, uint64_t *token, bool keep_reply,
              const char **why)
{
    static const rr_call_opts no_opts;
    const rr_call_opts *o = &no_opts;
    rr_call_opts taken = {.struct_size = 0};

    if (opts != NULL) {
        // The last field is a pointer, which is what the size is of.
        // NOLINTNEXTLINE(bugprone-sizeof-expression)
        size_t first = RR__OPTS_SIZE_UPTO(rr_call_opts, parent);
        if (!rr__opts_take(&taken, sizeof(taken), opts, first)) {
            *why = "rr_call_opts from a newer rawrpc.h than this library";
            return RR_EINVAL;
        }
        o = &taken;
    }

    if (ch == NULL || method == NULL || req == NULL ||
        (done->cb == NULL && (done->tramp == NULL || done->fn == NULL)) ||
        req->descriptor != method->input ||
        (o->n_metadata > 0 && o->metadata == NULL)) {
        *why = "invalid argument";
        return RR_EINVAL;
    }
    if (ch->freed) {
        *why = "the channel is being freed";
        return RR_EINVAL;
    }
    if ((*why = md_refuse(ch, o)) != NULL) {
        rr__log(RR_LOG_ERROR, "%s: %s (the budget is %zu bytes)",
                method->full_name, *why, ch->opts.max_metadata_size);
        return RR_EINVAL;
    }
    *why = "out of memory";
    ch_call *pc = pc_alloc(ch);
    if (pc == NULL)
        return RR_ENOMEM;
    pc->ch = ch;
    if (pc_pack(pc, req, o) != RR_OK ||
        (token != NULL && pc_take_token(ch, pc) != RR_OK)) {
        pc_free(pc);
        return RR_ENOMEM;
    }
    *why = NULL;
    pc->m = method;
    pc->cb = done->cb;
    pc->tramp = done->tramp;
    pc->fn = done->fn;
    pc->arg = done->arg;
    pc->keep_reply = keep_reply;
    pc->wait_for_ready = o->wait_for_ready;
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
            pc_finish(pc, RR_STATUS_CANCELLED, "parent call cancelled");
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
            pc_finish(pc, RR_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
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
    const char *why;

    return ch_call_start(ch, method, req, opts, &done, token, false, &why);
}

int
rr_stub_call(rr_channel *ch, const rr_method *method,
             const ProtobufCMessage *req, const rr_call_opts *opts,
             rr_stub_result tramp, rr_stub_fn fn, void *arg, uint64_t *token)
{
    ch_done done = {.tramp = tramp, .fn = fn, .arg = arg};
    const char *why;

    return ch_call_start(ch, method, req, opts, &done, token, false, &why);
}

int
rr_channel_cancel(rr_channel *ch, uint64_t token)
{
    if (ch == NULL || (uint32_t) token == 0)
        return RR_EINVAL;
    ch_call *pc = rr__idmap_get(&ch->tokens, (uint32_t) token);
    if (pc == NULL || pc->token != token || pc->done)
        return RR_EINVAL;
    pc_finish(pc, RR_STATUS_CANCELLED, "cancelled by the caller");
    return RR_OK;
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

// A status without a call, with its message as the caller wants it.
static rr_status
sync_refuse(rr_status status, const char *why, char **message)
{
    if (message != NULL)
        *message = strdup(why);
    return status;
}

rr_status
rr_channel_call_sync(rr_channel *ch, const rr_method *method,
                     const ProtobufCMessage *req, const rr_call_opts *opts,
                     ProtobufCMessage **reply, char **message)
{
    sync_state st = {0};
    const char *why;

    if (reply != NULL)
        *reply = NULL;
    if (message != NULL)
        *message = NULL;
    if (ch == NULL)
        return sync_refuse(RR_STATUS_INVALID_ARGUMENT, "invalid argument",
                           message);
    if (ev_depth(ch->loop) > 0) {
        why = "rr_channel_call_sync called from inside a loop callback; use "
              "rr_channel_call";
        rr__log(RR_LOG_ERROR, "%s", why);
        return sync_refuse(RR_STATUS_FAILED_PRECONDITION, why, message);
    }
    // The loop, not ch: a callback may free the channel while we wait
    // (which completes our call too).
    struct ev_loop *loop = ch->loop;
    ch_done done = {.cb = sync_cb, .arg = &st};
    int rv = ch_call_start(ch, method, req, opts, &done, NULL, true, &why);
    if (rv != RR_OK)
        return sync_refuse(rv == RR_ENOMEM ? RR_STATUS_RESOURCE_EXHAUSTED
                                           : RR_STATUS_INVALID_ARGUMENT,
                           why, message);
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

void
rr__channel_set_next_token(rr_channel *ch, uint64_t token)
{
    ch->next_token = token - 1;
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
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
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
    rr_channel_opts_init(&ch->opts);
    if (opts != NULL &&
        !rr__opts_take(&ch->opts, sizeof(ch->opts), opts,
                       RR__OPTS_SIZE_UPTO(rr_channel_opts, tcp_keepalive))) {
        rr__set_last_error("rr_channel_new: rr_channel_opts of %zu bytes; "
                           "this library takes up to %zu (fill them with "
                           "rr_channel_opts_init)",
                           opts->struct_size, sizeof(ch->opts));
        free(ch);
        return RR_EINVAL;
    }
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
    if ((ch->scratch = rr__scratch_get(loop)) == NULL ||
        (ch->defer = rr__defer_get(loop)) == NULL) {
        rr__scratch_unref(ch->scratch);
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
    ev_prepare_init(&ch->drain, ch_drain_cb);
    rr__idmap_init(&ch->tokens);
    rr__arena_init(&ch->replies);
    *out = ch;
    return RR_OK;
}

static void
ch_destroy(rr_channel *ch)
{
    while (ch->pool != NULL) {
        RR_UNPOISON(ch->pool, sizeof(*ch->pool));
        ch_call *next = ch->pool->qnext;
        rr__arena_fini(&ch->pool->arena);
        free(ch->pool->payload);
        free(ch->pool);
        ch->pool = next;
    }
    rr__idmap_fini(&ch->tokens);
    rr__defer_unref(ch->defer);
    rr__scratch_unref(ch->scratch);
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
    ev_prepare_stop(ch->loop, &ch->drain);
    // Every pending call completes now, before this returns: one already
    // settled (its delivery queued) with its outcome, the rest with
    // "channel freed".  Popped from the head each time, because any
    // callback may complete, cancel or deliver others (a nested loop).
    while (ch->live != NULL) {
        // pc_deliver unlinks pc before freeing it, so ch->live moves on;
        // the analyzer cannot see that across the call.
        ch_call *pc = ch->live;
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        pc_settle(pc, RR_STATUS_UNAVAILABLE, "channel freed");
        pc_deliver(pc);
    }
    if (ch->conn != NULL)
        rr__conn_close(&ch->conn->c, RR_ECLOSED, "channel freed");
    while (ch->old != NULL)
        rr__conn_close(&ch->old->c, RR_ECLOSED, "channel freed");
    ch_leave(ch);
}
