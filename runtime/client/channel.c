// SPDX-License-Identifier: MIT
//
// channel.c -- rr_channel: the client side's calls.  One connection at a
// time (the subchannel's, subchannel.c) carries every call, multiplexed
// by call ID; calls wait in a queue while the subchannel connects, while
// the server's concurrency limit is reached, or while the connection's
// output is over its high-water mark (they go again once it drains).
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
#include "client/channel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "codec/meta.h"
#include "codec/preface.h"
#include "rawrpc/rawrpc.h"
#include "rawrpc/stub.h"
#include "transport/addr.h"
#include "util/container.h"
#include "util/errmap.h"
#include "util/evtimer.h"
#include "util/log.h"
#include "util/opts.h"
#include "util/poison.h"

#define CALL_POOL_MAX 256
// Pooled calls keep their payload buffers, so steady traffic allocates
// nothing, within a budget for the whole pool: a burst of big requests
// must not pin its memory for the channel's life, and 64 calls of 64 KiB
// in flight must not allocate per call either (docs/PERFORMANCE.md).
#define POOL_PAYLOAD_BUDGET ((size_t) 8 * 1024 * 1024)
char rr__ch_zombie;

// A call's message when there was no memory to copy the real one.
static const char no_memory_msg[] = "out of memory (for the status message, "
                                    "too)";

static void pc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void pc_deliver_cb(rr__defer_node *node);
static void pc_parent_cancelled(rr__child *child);

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

    if (pc->message != NULL && pc->message != no_memory_msg)
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
void
rr__pc_deliver(ch_call *pc)
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

    if (pc->started_at > 0)
        rr__log(RR_LOG_DEBUG, "call %s to %s: %s%s%s in %.3f ms",
                pc->m->full_name, ch->target, rr_status_name(pc->status),
                pc->message != NULL ? ": " : "",
                pc->message != NULL ? pc->message : "",
                (ev_time() - pc->started_at) * 1e3);
    rr_result res = {
        .status = pc->status,
        .message = pc->message != NULL ? pc->message : "",
        .reply = pc->status == RR_STATUS_OK ? pc->reply : NULL,
        .reply_data = pc->status == RR_STATUS_OK ? pc->reply_data : NULL,
        .reply_len = pc->status == RR_STATUS_OK ? pc->reply_len : 0,
    };
    pc->reply_data = NULL; // a frame's bytes: valid during the callback
    rr__ch_hold(ch);
    if (pc->tramp != NULL)
        pc->tramp(&res, pc->fn, pc->arg);
    else
        pc->cb(&res, pc->arg);
    if (pc->keep_reply)
        pc->reply = NULL; // handed over to rr_channel_call_sync's caller
    pc_free(pc);
    rr__ch_release(ch);
}

static void
pc_deliver_cb(rr__defer_node *node)
{
    rr__pc_deliver(RR_CONTAINER_OF(node, ch_call, deliver));
}

// Takes the call off the wire and the queue: a sent call leaves a ZOMBIE
// and a CANCEL behind.
static void
pc_detach(ch_call *pc, bool send_cancel)
{
    if (pc->queued)
        q_remove(pc->ch, pc);
    rr__sub_forget(pc, send_cancel);
}

// Decides the call's outcome, once: the first of reply, failure, cancel
// and deadline wins.  Returns false when the call was already settled.
// Runs no user code.
bool
rr__pc_settle(ch_call *pc, rr_status status, const char *msg)
{
    if (pc->done)
        return false;
    pc->done = true;
    pc->status = status;
    pc->message = NULL;
    if (msg != NULL && *msg != '\0' && (pc->message = strdup(msg)) == NULL)
        pc->message = (char *) no_memory_msg; // the status says enough
    rr__timer_stop(pc->ch->loop, &pc->timer);
    pc_detach(pc, status != RR_STATUS_OK && status != RR_STATUS_UNAVAILABLE);
    return true;
}

// Settles the call and delivers it from the loop's deferred queue: never
// before the function that got here returns.  Runs no user code.
void
rr__pc_finish(ch_call *pc, rr_status status, const char *msg)
{
    if (rr__pc_settle(pc, status, msg))
        rr__defer_post(pc->ch->defer, &pc->deliver);
}

static void
pc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    ch_call *pc = RR_CONTAINER_OF(w, ch_call, timer);

    rr__pc_finish(pc, RR_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
}

static void
pc_parent_cancelled(rr__child *child)
{
    ch_call *pc = RR_CONTAINER_OF(child, ch_call, child);

    rr__pc_finish(pc, RR_STATUS_CANCELLED, "parent call cancelled");
}

// Sends queued calls while the subchannel takes them and has room; waits
// for the output to drain (ch_drain_cb) when only that stops it, and
// connects when the subchannel is idle with calls waiting.  Runs no user
// code.
void
rr__ch_pump(rr_channel *ch)
{
    rr__subchannel *sub = &ch->sub;

    if (ch->freed)
        return;
    while (ch->q_head != NULL && rr__sub_can_take(sub) &&
           rr__sub_has_room(sub)) {
        ch_call *pc = ch->q_head;
        q_remove(ch, pc);
        rr__sub_send(sub, pc);
    }
    if (ch->q_head == NULL)
        return;
    if (sub->state == RR_SUB_IDLE)
        rr__sub_connect(sub);
    else if (rr__sub_can_take(sub) && !ev_is_active(&ch->drain))
        ev_prepare_start(ch->loop, &ch->drain);
}

void
rr__ch_requeue(rr_channel *ch, ch_call *pc)
{
    q_push(ch, pc, true);
}

void
rr__ch_drain(rr_channel *ch)
{
    if (!ev_is_active(&ch->drain) ||
        (ch->q_head != NULL && !rr__sub_drained(&ch->sub)))
        return;
    ev_prepare_stop(ch->loop, &ch->drain);
    rr__ch_hold(ch);
    rr__ch_pump(ch);
    rr__ch_release(ch);
}

// Before each poll while queued calls wait for the output, and when a
// write empties it (cc_on_written): once the connection has written it
// down to OUT_LOW (or is gone), pump again.
static void
ch_drain_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void) loop;
    (void) revents;
    rr__ch_drain(RR_CONTAINER_OF(w, rr_channel, drain));
}

// Fails the queued calls that do not wait for ready; the others keep
// their order.  Runs no user code: the failures are delivered from the
// loop.
void
rr__ch_fail_queue(rr_channel *ch, const char *why)
{
    for (size_t n = ch->q_len; n > 0 && ch->q_head != NULL; n--) {
        ch_call *pc = ch->q_head;
        q_remove(ch, pc);
        if (pc->wait_for_ready)
            q_push(ch, pc, false);
        else
            rr__pc_finish(pc, RR_STATUS_UNAVAILABLE, why);
    }
}

// ---------------------------------------------------------------- calls

// Copies the packed request and the metadata into one allocation.
// What a call sends: a message to pack, or (raw) bytes packed already
// and the method's name, which are copied too.
typedef struct ch_req {
    const ProtobufCMessage *msg;
    const uint8_t *raw;
    size_t raw_len;
    const char *raw_method;
} ch_req;

static int
pc_pack(ch_call *pc, const ch_req *req, const rr_call_opts *o)
{
    size_t n = req->msg != NULL ? protobuf_c_message_get_packed_size(req->msg)
                                : req->raw_len;
    size_t md_bytes = 0;
    size_t name_len = req->msg != NULL ? 0 : strlen(req->raw_method) + 1;

    for (size_t i = 0; i < o->n_metadata; i++)
        md_bytes += strlen(o->metadata[i].key) + 1 + o->metadata[i].value_len;
    size_t md_at = (n + 15) & ~(size_t) 15;
    size_t total =
        md_at + o->n_metadata * sizeof(rr_metadata) + md_bytes + name_len;
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
    if (req->msg != NULL)
        protobuf_c_message_pack(req->msg, p);
    else if (n > 0)
        memcpy(p, req->raw, n);
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
    if (name_len > 0) { // raw: the name, and a method without descriptors
        memcpy(s, req->raw_method, name_len);
        pc->raw_m = (rr_method){s, NULL, NULL};
        pc->m = &pc->raw_m;
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
    rr__subchannel *sub = &ch->sub; // the only one, for now

    switch (sub->state) {
    case RR_SUB_READY:
        // Straight onto the wire when no call waits ahead of it.
        if (ch->q_head == NULL && rr__sub_can_take(sub) &&
            rr__sub_has_room(sub)) {
            rr__sub_send(sub, pc);
            break;
        }
        q_push(ch, pc, false);
        rr__ch_pump(ch);
        break;
    case RR_SUB_IDLE:
        q_push(ch, pc, false);
        rr__sub_connect(sub);
        break;
    case RR_SUB_CONNECTING:
        q_push(ch, pc, false);
        break;
    case RR_SUB_BACKOFF:
        if (pc->wait_for_ready)
            q_push(ch, pc, false);
        else
            rr__pc_finish(pc, RR_STATUS_UNAVAILABLE, sub->last_error);
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
ch_call_begin(rr_channel *ch, const rr_method *method, const ch_req *req,
              const rr_call_opts *opts, const ch_done *done, uint64_t *token,
              bool keep_reply, const char **why)
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

    bool raw = req->raw_method != NULL;
    if (ch == NULL ||
        (done->cb == NULL && (done->tramp == NULL || done->fn == NULL)) ||
        (!raw && (method == NULL || req->msg == NULL ||
                  req->msg->descriptor != method->input)) ||
        (raw && (req->raw_method[0] != '/' ||
                 (req->raw == NULL && req->raw_len > 0))) ||
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
                raw ? req->raw_method : method->full_name, *why,
                ch->opts.max_metadata_size);
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
    if (!raw)
        pc->m = method; // a raw call's is its own (pc_pack)
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
    pc->started_at = rr__log_on(RR_LOG_DEBUG) ? ev_time() : 0;
    double t = o->timeout > 0 ? o->timeout : ch->opts.default_timeout;
    pc->deadline_at = t > 0 ? now + t : 0;
    if (o->parent != NULL) {
        if (rr_call_cancelled(o->parent)) {
            rr__pc_finish(pc, RR_STATUS_CANCELLED, "parent call cancelled");
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
            rr__pc_finish(pc, RR_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
            return RR_OK;
        }
        ev_timer_set(&pc->timer, pc->deadline_at - now, 0.);
        ev_timer_start(ch->loop, &pc->timer);
    }
    rr__ch_hold(ch);
    ch_route(ch, pc);
    rr__ch_release(ch);
    return RR_OK;
}

// ch_call_begin; a call that could not start says why in rr_last_error
// too.
static int
ch_call_start(rr_channel *ch, const rr_method *method, const ch_req *req,
              const rr_call_opts *opts, const ch_done *done, uint64_t *token,
              bool keep_reply, const char **why)
{
    int rv = ch_call_begin(ch, method, req, opts, done, token, keep_reply, why);

    if (rv != RR_OK)
        rr__set_last_error("%s", *why);
    return rv;
}

int
rr_channel_call(rr_channel *ch, const rr_method *method,
                const ProtobufCMessage *req, const rr_call_opts *opts,
                rr_result_cb cb, void *arg, uint64_t *token)
{
    ch_done done = {.cb = cb, .arg = arg};
    ch_req r = {.msg = req};
    const char *why;

    return ch_call_start(ch, method, &r, opts, &done, token, false, &why);
}

int
rr_channel_call_raw(rr_channel *ch, const char *method, const uint8_t *req,
                    size_t len, const rr_call_opts *opts, rr_result_cb cb,
                    void *arg, uint64_t *token)
{
    ch_done done = {.cb = cb, .arg = arg};
    ch_req r = {.raw = req, .raw_len = len, .raw_method = method};
    const char *why;

    return ch_call_start(ch, NULL, &r, opts, &done, token, false, &why);
}

int
rr_stub_call(rr_channel *ch, const rr_method *method,
             const ProtobufCMessage *req, const rr_call_opts *opts,
             rr_stub_result tramp, rr_stub_fn fn, void *arg, uint64_t *token)
{
    ch_done done = {.tramp = tramp, .fn = fn, .arg = arg};
    ch_req r = {.msg = req};
    const char *why;

    return ch_call_start(ch, method, &r, opts, &done, token, false, &why);
}

int
rr_channel_cancel(rr_channel *ch, uint64_t token)
{
    if (ch == NULL || (uint32_t) token == 0)
        return RR_EINVAL;
    ch_call *pc = rr__idmap_get(&ch->tokens, (uint32_t) token);
    if (pc == NULL || pc->token != token || pc->done)
        return RR_EINVAL;
    rr__pc_finish(pc, RR_STATUS_CANCELLED, "cancelled by the caller");
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
    ch_req r = {.msg = req};
    int rv = ch_call_start(ch, method, &r, opts, &done, NULL, true, &why);
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
    return rr__sub_set_next_id(&ch->sub, id);
}

void
rr__channel_set_next_token(rr_channel *ch, uint64_t token)
{
    ch->next_token = token - 1;
}

bool
rr_channel_connected(const rr_channel *ch)
{
    return ch->sub.state == RR_SUB_READY;
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
    rr_addr addr;
    if (rr__addr_parse(target, &addr, msg, sizeof(msg)) != RR_OK) {
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
    rr__sub_init(&ch->sub, ch, &addr);
    ev_prepare_init(&ch->drain, ch_drain_cb);
    rr__idmap_init(&ch->tokens);
    rr__arena_init(&ch->replies);
    *out = ch;
    return RR_OK;
}

void
rr__ch_destroy(rr_channel *ch)
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
    rr__ch_hold(ch);
    ch->freed = true;
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
        rr__pc_settle(pc, RR_STATUS_UNAVAILABLE, "channel freed");
        rr__pc_deliver(pc);
    }
    rr__sub_close(&ch->sub);
    rr__ch_release(ch);
}
