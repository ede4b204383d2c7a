// SPDX-License-Identifier: MIT
//
// call.h -- the server call (rr_call) and the per-loop core it lives on.
//
// A core is what a server's calls need on one loop: the loop, its
// deferred queue, the method table, the pool of finished calls, and the
// mailbox that brings completions from other threads.  The server owns
// its cores while it lives; rr_server_free orphans them instead of
// freeing them (rr__core_orphan), and an orphaned core goes away with its
// last call.  An orphaned core touches no loop any more (an extra loop's
// is destroyed with the server), so a call completed after the free, on
// any thread, is only freed.
//
// A call's life: rr__call_new when a REQUEST arrives, rr__call_start
// dispatches it, then exactly one completion (rr_call_reply, rr_call_fail
// or their _from_thread forms, claimed atomically in one place), which
// answers the connection if it is still there and frees the call.  A
// cancel (the client's, the deadline's, the connection's end) answers
// the connection at once; the call stays until its handler completes it.

#ifndef RR_SERVER_CALL_H
#define RR_SERVER_CALL_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "rawrpc/rawrpc.h"
#include "rawrpc/v1/wire.pb-c.h"
#include "server/child.h"
#include "server/methods.h"
#include "util/arena.h"
#include "util/defer.h"
#include "util/log.h"
#include "util/poison.h"

typedef struct rr_sconn rr_sconn;
typedef struct rr__core rr__core;

struct rr_call {
    rr__core *core;
    rr_sconn *sc; // NULL once the connection is gone
    rr_call *prev, *next;
    uint32_t id;
    const rr__method *m;
    ProtobufCMessage *req;
    Rawrpc__V1__RequestMeta *meta; // only when it carried user metadata
    ev_timer deadline;
    ev_tstamp deadline_at; // loop time; 0 = none
    ev_tstamp started_at;  // for the debug log line; 0 when it is off
    atomic_bool cancelled;
    bool responded; // its RESPONSE is sent, or can no longer be
    // Claimed by its first completion, from whichever thread: then in
    // the mailbox, in the pool, or being freed.
    atomic_bool completed;
    rr_cancel_cb cancel_cb;
    void *cancel_arg;
    rr__defer_node cancel_later; // rr_call_on_cancel on a cancelled call
    rr__child *children;
    // a completion posted from another thread
    rr_call *posted_next;
    rr_status t_status;
    uint8_t *t_payload;
    size_t t_len;
    char *t_msg;        // the thread's message, malloc'd, or NULL
    const char *t_why;  // or, when the reply could not be sent, why
    const char *peer;   // the connection's name, or peer_copy
    char peer_copy[80]; // once the call has let go of its connection
    rr_arena arena;     // request and metadata live here
};

// rr__core_new makes loop's core, sharing methods (a reference is taken).
// Returns RR_OK and sets *out, or RR_ENOMEM.  Loop thread.
int rr__core_new(rr__core **out, struct ev_loop *loop, rr__methods *methods);

// rr__core_methods is the table the core's calls are dispatched from.
const rr__methods *rr__core_methods(const rr__core *core);
// rr__core_memo is the method this loop found last (methods.h).
rr__method_memo *rr__core_memo(rr__core *core);

// rr__core_orphan lets go of the core for its server (rr_server_free,
// once no callback of the server is on the stack).  Cancel callbacks
// still waiting for the loop run now; completions posted from threads
// are taken; the core leaves the loop and is freed with its last call,
// or at once.  Every call must have let go of its connection.  Loop
// thread.
void rr__core_orphan(rr__core *core);

// rr__core_live copies up to max of the core's calls not yet completed
// into out and returns how many there are.  Loop thread.
size_t rr__core_live(const rr__core *core, rr_call **out, size_t max);

// rr__call_discard frees a call that was never started (its REQUEST was
// answered already).
void rr__call_discard(rr_call *call);

// rr__call_cancel cancels the call with status: answers its connection
// (unless gone or answered), tells its children, then runs its cancel
// callback (last: that callback may complete and free the call).
void rr__call_cancel(rr_call *call, rr_status status, const char *msg);

// rr__call_detach lets go of the call's connection, which may then be
// freed before the call is.
void rr__call_detach(rr_call *call);

// ------------------------------------------- inline: once per request

#define RR__CALL_POOL_MAX 256

struct rr__core {
    struct ev_loop *loop;
    rr__defer *defer; // the loop's deferred queue
    rr__methods *methods;
    rr__method_memo memo; // this loop's method found last
    rr_call *live;        // every call not yet completed, doubly linked
    rr_call *pool;        // free calls, singly linked through next
    size_t n_pool;
    ev_async async; // completions from other threads
    // Under mu: the mailbox, and, once orphaned, the live list (calls are
    // then completed from any thread).
    pthread_mutex_t mu;
    rr_call *posted;
    atomic_bool orphan;
};

// What rr__call_new sets up in each call (call.c).
void rr__call_cancel_later(rr__defer_node *n);
void rr__call_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);

static inline void
rr__call_link(rr_call **head, rr_call *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

static inline rr_call *
rr__pool_get(rr__core *core)
{
    rr_call *call = core->pool;

    if (call != NULL) {
        RR_UNPOISON(call, sizeof(*call));
        core->pool = call->next;
        core->n_pool--;
    }
    return call;
}

// rr__call_new takes a call for the REQUEST id on sc, whose name is peer
// (a pooled call when there is one); NULL when out of memory.
static inline rr_call *
rr__call_new(rr__core *core, rr_sconn *sc, uint32_t id, const char *peer)
{
    rr_call *call = rr__pool_get(core);

    if (call == NULL) {
        if ((call = malloc(sizeof(*call))) == NULL)
            return NULL;
        // Once: a pooled call keeps its arena, and goes back to the pool
        // with its timer stopped, its deferred node off the queue and
        // nothing from a thread (call.c's call_release).
        rr__arena_init(&call->arena);
        ev_timer_init(&call->deadline, rr__call_deadline_cb, 0., 0.);
        rr__defer_node_init(&call->cancel_later, rr__call_cancel_later);
        call->t_payload = NULL;
        call->t_msg = NULL;
        call->t_why = NULL;
    }
    call->core = core;
    call->sc = sc;
    call->id = id;
    call->m = NULL;
    call->req = NULL;
    call->meta = NULL;
    call->deadline_at = 0;
    atomic_init(&call->cancelled, false);
    call->responded = false;
    atomic_init(&call->completed, false);
    call->cancel_cb = NULL;
    call->children = NULL;
    call->peer = peer; // the connection's; copied only if the call outlives it
    call->started_at = rr__log_on(RR_LOG_DEBUG) ? ev_time() : 0;
    rr__call_link(&core->live, call);
    return call;
}

// rr__call_start arms the call's deadline (deadline_at) and runs its
// handler.
static inline void
rr__call_start(rr_call *call)
{
    const rr__method *m = call->m;

    if (call->deadline_at > 0) {
        ev_timer_set(&call->deadline,
                     call->deadline_at - ev_now(call->core->loop), 0.);
        ev_timer_start(call->core->loop, &call->deadline);
    }
    if (m->tramp != NULL)
        m->tramp(call, call->req, m->fn, m->arg);
    else
        m->handler(call, call->req, m->arg);
}

#endif // RR_SERVER_CALL_H
