// SPDX-License-Identifier: MIT
//
// call.c -- the server call and its per-loop core; see call.h.

#include "server/call.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/sconn.h"
#include "server/server.h"
#include "util/container.h"
#include "util/evtimer.h"
#include "util/log.h"
#include "util/poison.h"

static void core_async_cb(struct ev_loop *loop, ev_async *w, int revents);

int
rr__core_new(rr__core **out, struct ev_loop *loop, rr__methods *methods)
{
    rr__core *core = calloc(1, sizeof(*core));

    *out = NULL;
    if (core == NULL)
        return RR_ENOMEM;
    if ((core->defer = rr__defer_get(loop)) == NULL) {
        free(core);
        return RR_ENOMEM;
    }
    core->loop = loop;
    core->methods = rr__methods_ref(methods);
    atomic_init(&core->orphan, false);
    pthread_mutex_init(&core->mu, NULL);
    ev_async_init(&core->async, core_async_cb);
    ev_async_start(loop, &core->async);
    ev_unref(loop); // the mailbox alone must not keep the loop running
    *out = core;
    return RR_OK;
}

const rr__methods *
rr__core_methods(const rr__core *core)
{
    return core->methods;
}

size_t
rr__core_live(const rr__core *core, rr_call **out, size_t max)
{
    size_t n = 0;

    for (rr_call *c = core->live; c != NULL; c = c->next, n++) {
        if (n < max)
            out[n] = c;
    }
    return n;
}

rr__method_memo *
rr__core_memo(rr__core *core)
{
    return &core->memo;
}

static void
core_destroy(rr__core *core)
{
    rr_call *c;

    while ((c = core->pool) != NULL) {
        RR_UNPOISON(c, sizeof(*c));
        core->pool = c->next;
        rr__arena_fini(&c->arena);
        free(c);
    }
    rr__methods_unref(core->methods);
    pthread_mutex_destroy(&core->mu);
    free(core);
}

// ----------------------------------------------------------------- calls

static void
call_unlink(rr_call **head, rr_call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

// The pool keeps finished calls for reuse; in ASan builds they are
// poisoned there, so a completion of a call already completed is caught.
static void
pool_put(rr__core *core, rr_call *call)
{
    call->next = core->pool;
    core->pool = call;
    core->n_pool++;
    RR_POISON(call, sizeof(*call));
}

// rr_call_on_cancel's callback for a call already cancelled, from the
// loop: never inside rr_call_on_cancel itself.  The call is live, so its
// core is; after the callback nothing of either is touched (it may
// complete the call, or free the server).
void
rr__call_cancel_later(rr__defer_node *n)
{
    rr_call *call = RR_CONTAINER_OF(n, rr_call, cancel_later);
    rr_cancel_cb cb = call->cancel_cb;

    call->cancel_cb = NULL;
    if (cb != NULL)
        cb(call, call->cancel_arg);
}

static void
call_release(rr_call *call)
{
    while (call->children != NULL)
        rr__call_unlink_child(call->children);
    rr__arena_reset(&call->arena);
    if (call->t_payload != NULL) { // only replies from other threads
        free(call->t_payload);
        call->t_payload = NULL;
    }
    if (call->t_msg != NULL) {
        free(call->t_msg);
        call->t_msg = NULL;
    }
    call->t_why = NULL;
}

// Frees a call of an orphaned core, from any thread; the last one frees
// the core.  Its timer and deferred node were let go at the orphaning.
static void
call_free_orphan(rr__core *core, rr_call *call)
{
    call_release(call);
    pthread_mutex_lock(&core->mu);
    call_unlink(&core->live, call);
    bool last = core->live == NULL;
    pthread_mutex_unlock(&core->mu);
    rr__arena_fini(&call->arena);
    free(call);
    if (last)
        core_destroy(core);
}

static void
call_free(rr_call *call)
{
    rr__core *core = call->core;

    if (atomic_load_explicit(&core->orphan, memory_order_acquire)) {
        call_free_orphan(core, call);
        return;
    }
    call_release(call);
    rr__defer_cancel(core->defer, &call->cancel_later);
    rr__timer_stop(core->loop, &call->deadline);
    call_unlink(&core->live, call);
    if (core->n_pool < RR__CALL_POOL_MAX) {
        pool_put(core, call);
    } else {
        rr__arena_fini(&call->arena);
        free(call);
    }
}

void
rr__call_discard(rr_call *call)
{
    call_free(call);
}

void
rr__call_detach(rr_call *call)
{
    if (call->sc == NULL)
        return;
    snprintf(call->peer_copy, sizeof(call->peer_copy), "%s", call->peer);
    call->peer = call->peer_copy;
    call->sc = NULL;
}

// The call's RESPONSE is settled: it no longer counts against the limit.
static void
call_settle(rr_call *call)
{
    rr_sconn *sc = call->sc;

    call->responded = true;
    if (call->core->loop != NULL)
        rr__timer_stop(call->core->loop, &call->deadline);
    if (sc != NULL && rr__sconn_forget(sc, call->id)) {
        rr__call_detach(call); // finishing may free the connection
        rr__sconn_finish(sc);
    }
}

void
rr__call_cancel(rr_call *call, rr_status status, const char *msg)
{
    if (atomic_load(&call->cancelled))
        return;
    atomic_store(&call->cancelled, true);
    if (!call->responded) {
        if (call->sc != NULL)
            rr__sconn_respond(call->sc, call->id, status, msg, NULL, NULL, 0);
        call_settle(call);
    }
    rr__call_detach(call); // answered: it stays only until its handler is done
    if (atomic_load(&call->completed))
        return; // its response failed and closed the connection: the
                // handler is done with it, so nothing of the handler's runs
    while (call->children != NULL) {
        rr__child *ch = call->children;
        rr__call_unlink_child(ch);
        ch->cancel(ch);
    }
    if (call->cancel_cb != NULL) {
        rr_cancel_cb cb = call->cancel_cb;
        call->cancel_cb = NULL;
        cb(call, call->cancel_arg);
    }
}

// A deadline runs only while the call is unanswered, so with its
// connection, whose server is held across the cancel.
void
rr__call_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_call *call = RR_CONTAINER_OF(w, rr_call, deadline);
    rr_server *srv = rr__sconn_server(call->sc);

    rr__server_hold(srv);
    rr__call_cancel(call, RR_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
    rr__server_release(srv);
}

// ------------------------------------------------------------ completion

// Claims the call for its one completion, arbitrated here for every
// path and thread: the loop's rr_call_reply and rr_call_fail, and the
// _from_thread forms, whose completion waits in the mailbox meanwhile (a
// cancel on the loop then runs no callback for it).  A call already
// claimed is in the mailbox, the pool or reused: a second completion must
// not push it into the pool again, which would hand it to two requests
// and make the pool a cycle.
static bool
call_completable(rr_call *call, const char *fn)
{
    if (!atomic_exchange(&call->completed, true))
        return true;
    rr__bug("%s: call to %s completed twice", fn,
            call->m != NULL ? call->m->name : "?");
    return false;
}

// The debug line of a call, at its completion.
static void
call_log(const rr_call *call, rr_status status, const char *msg)
{
    double ms = (ev_time() - call->started_at) * 1e3;
    bool late = atomic_load(&call->cancelled);

    rr__log(RR_LOG_DEBUG, "call %s from %s: %s%s%s in %.3f ms%s",
            call->m != NULL ? call->m->name : "?", call->peer,
            rr_status_name(status), msg != NULL && *msg != '\0' ? ": " : "",
            msg != NULL ? msg : "", ms,
            late ? " (after its cancel, which the client got)" : "");
}

// Completes the call with a message reply, raw bytes, or a status.
static void
call_complete(rr_call *call, rr_status status, const char *msg,
              const ProtobufCMessage *reply, const uint8_t *raw, size_t raw_len)
{
    // Claimed already (call_completable, or the mailbox's poster).
    if (call->started_at > 0)
        call_log(call, status, msg);
    if (!call->responded && call->sc != NULL) {
        rr__sconn_respond(call->sc, call->id, status, msg, reply, raw, raw_len);
        call_settle(call);
    }
    call_free(call);
}

int
rr_call_reply(rr_call *call, const ProtobufCMessage *reply)
{
    if (!call_completable(call, "rr_call_reply"))
        return RR_EINVAL;
    if (reply == NULL || reply->descriptor != call->m->m.output) {
        rr__log(RR_LOG_ERROR, "%s: reply is not a %s", call->m->name,
                call->m->m.output->name);
        call_complete(call, RR_STATUS_INTERNAL, "reply of the wrong type", NULL,
                      NULL, 0);
        return RR_EINVAL;
    }
    call_complete(call, RR_STATUS_OK, NULL, reply, NULL, 0);
    return RR_OK;
}

void
rr_call_fail(rr_call *call, rr_status status, const char *message)
{
    if (!call_completable(call, "rr_call_fail"))
        return;
    if (status == RR_STATUS_OK)
        status = RR_STATUS_UNKNOWN; // OK with no reply is not a reply
    call_complete(call, status, message, NULL, NULL, 0);
}

// Hands a completion made on another thread to the call's loop.  The
// wake-up is sent under the lock, so the orphaning (which takes it)
// cannot stop the mailbox in between; an orphaned core has no loop, and
// the call is just freed here.
static void
call_post(rr_call *call)
{
    rr__core *core = call->core;

    pthread_mutex_lock(&core->mu);
    if (!atomic_load(&core->orphan)) {
        call->posted_next = core->posted;
        core->posted = call;
        ev_async_send(core->loop, &core->async);
        pthread_mutex_unlock(&core->mu);
        return;
    }
    pthread_mutex_unlock(&core->mu);
    call_free_orphan(core, call);
}

void
rr_call_reply_from_thread(rr_call *call, const ProtobufCMessage *reply)
{
    if (!call_completable(call, "rr_call_reply_from_thread"))
        return;
    size_t n = protobuf_c_message_get_packed_size(reply);

    call->t_status = RR_STATUS_OK;
    if (reply->descriptor != call->m->m.output) {
        call->t_status = RR_STATUS_INTERNAL;
        call->t_why = "reply of the wrong type";
    } else if ((call->t_payload = malloc(n > 0 ? n : 1)) == NULL) {
        call->t_status = RR_STATUS_RESOURCE_EXHAUSTED;
        call->t_why = "server out of memory for the reply";
    } else {
        protobuf_c_message_pack(reply, call->t_payload);
        call->t_len = n;
    }
    call_post(call);
}

void
rr_call_fail_from_thread(rr_call *call, rr_status status, const char *message)
{
    if (!call_completable(call, "rr_call_fail_from_thread"))
        return;
    call->t_status = status == RR_STATUS_OK ? RR_STATUS_UNKNOWN : status;
    call->t_msg = message != NULL ? strdup(message) : NULL;
    if (message != NULL && call->t_msg == NULL)
        call->t_why = "server out of memory for the status message";
    call_post(call);
}

// Completes the calls in list, taken from the mailbox.  Each is live
// until completed, and so is the core; after the last nothing of the
// core is touched (a completion may free the server and orphan it).
static void
core_complete_posted(rr_call *list)
{
    while (list != NULL) {
        rr_call *call = list;
        list = call->posted_next;
        if (call->t_status == RR_STATUS_OK)
            call_complete(call, RR_STATUS_OK, NULL, NULL, call->t_payload,
                          call->t_len);
        else
            call_complete(call, call->t_status,
                          call->t_msg != NULL ? call->t_msg : call->t_why, NULL,
                          NULL, 0);
    }
}

static rr_call *
core_take_posted(rr__core *core)
{
    pthread_mutex_lock(&core->mu);
    rr_call *list = core->posted;
    core->posted = NULL;
    pthread_mutex_unlock(&core->mu);
    return list;
}

static void
core_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) loop;
    (void) revents;
    rr__core *core = RR_CONTAINER_OF(w, rr__core, async);

    core_complete_posted(core_take_posted(core));
}

// A live call whose cancel callback waits for the loop, or NULL.
static rr_call *
core_waiting_cancel(const rr__core *core)
{
    for (rr_call *c = core->live; c != NULL; c = c->next) {
        if (rr__defer_queued(&c->cancel_later))
            return c;
    }
    return NULL;
}

void
rr__core_orphan(rr__core *core)
{
    rr_call *call;

    // rr_server_free runs cancel callbacks inside it: those that waited
    // for the next iteration run now, one at a time, since each may
    // complete any call.
    while ((call = core_waiting_cancel(core)) != NULL) {
        rr__defer_cancel(core->defer, &call->cancel_later);
        rr__call_cancel_later(&call->cancel_later);
    }
    pthread_mutex_lock(&core->mu);
    rr_call *posted = core->posted;
    core->posted = NULL;
    for (call = core->live; call != NULL; call = call->next)
        rr__timer_stop(core->loop, &call->deadline);
    ev_ref(core->loop);
    ev_async_stop(core->loop, &core->async);
    rr__defer_unref(core->defer);
    core->defer = NULL;
    core->loop = NULL;
    atomic_store_explicit(&core->orphan, true, memory_order_release);
    bool none = core->live == NULL;
    pthread_mutex_unlock(&core->mu);
    if (none) {
        core_destroy(core);
        return;
    }
    core_complete_posted(posted); // answered by nobody: just freed
}

// ------------------------------------------------------------ accessors

double
rr_call_remaining(const rr_call *call)
{
    if (call->deadline_at == 0)
        return INFINITY;
    struct ev_loop *loop = call->core->loop;
    // ev_now is the loop's time; without a loop, the clock it follows.
    return call->deadline_at - (loop != NULL ? ev_now(loop) : ev_time());
}

bool
rr_call_cancelled(const rr_call *call)
{
    return atomic_load(&call->cancelled);
}

void
rr_call_on_cancel(rr_call *call, rr_cancel_cb cb, void *arg)
{
    call->cancel_cb = cb;
    call->cancel_arg = arg;
    if (atomic_load(&call->cancelled) && call->core->defer != NULL)
        rr__defer_post(call->core->defer, &call->cancel_later);
}

const uint8_t *
rr_call_metadata(const rr_call *call, const char *key, size_t *len)
{
    if (call->meta == NULL)
        return NULL; // the request carried none
    if (strncmp(key, "rr-", 3) == 0)
        return NULL; // reserved for the protocol (PROTOCOL.md 5.2)
    for (size_t i = 0; i < call->meta->n_metadata; i++) {
        const Rawrpc__V1__MetadataEntry *e = call->meta->metadata[i];
        if (strcmp(e->key, key) == 0) {
            if (len != NULL)
                *len = e->value.len;
            return e->value.data != NULL ? e->value.data : (const uint8_t *) "";
        }
    }
    return NULL;
}

const rr_method *
rr_call_method(const rr_call *call)
{
    return &call->m->m;
}

const char *
rr_call_peer(const rr_call *call)
{
    return call->peer;
}

struct ev_loop *
rr_call_loop(const rr_call *call)
{
    return call->core->loop;
}

// --------------------------------------------------------------- children

void
rr__call_link_child(rr_call *parent, rr__child *child)
{
    child->next = parent->children;
    if (child->next != NULL)
        child->next->pprev = &child->next;
    parent->children = child;
    child->pprev = &parent->children;
}

void
rr__call_unlink_child_slow(rr__child *child)
{
    *child->pprev = child->next;
    if (child->next != NULL)
        child->next->pprev = child->pprev;
    child->next = NULL;
    child->pprev = NULL;
}
