// SPDX-License-Identifier: MIT
//
// defer.h -- the per-loop deferred-completion queue: "never before the
// function returns" enforced in one place (after nng's nni_aio_finish).
//
// A function that completes something synchronously -- a call that fails
// before it could be sent, a cancel, a deadline -- posts a node here
// instead of running the user's callback; the loop runs the node's
// function later, from the loop, when nothing of the poster is on the
// stack.  One queue per loop, shared by every channel and server on it
// and reference counted like the loop's read buffer (conn.h).
//
// The loop drains the queue from an ev_check watcher, and an ev_idle
// watcher keeps the loop from blocking while work waits; both are active
// only while the queue holds a node, so an empty queue keeps no ev_run
// alive and costs nothing per iteration.  A drain runs only the nodes
// posted before it began (what their functions post waits for the next
// iteration, so a callback that keeps posting cannot starve the loop) and
// pops from the head after each one: any function may post, cancel, free
// the node's owner, or run the loop again.
//
// Threads: rr__defer_get and rr__defer_unref are thread-safe; posting,
// cancelling and draining happen on the loop's own thread.

#ifndef RR_DEFER_H
#define RR_DEFER_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rr__defer_node rr__defer_node;
typedef void (*rr__defer_fn)(rr__defer_node *node);

// Embedded in the object that completes (G6); rr__defer_node_init once.
struct rr__defer_node {
    rr__defer_node *next, *prev; // in the queue, while queued
    rr__defer_fn fn;             // runs from the loop; may free the node
    uint64_t seq;                // posting order, for the drain's snapshot
    bool queued;
};

typedef struct rr__defer rr__defer;
struct rr__defer {
    struct ev_loop *loop;
    atomic_uint refs;
    rr__defer *next;             // the registry of every loop's queue
    rr__defer_node *head, *tail; // oldest first
    uint64_t seq;                // the next node's sequence number
    ev_check check;              // drains
    ev_idle idle;                // keeps the loop from blocking meanwhile
};

// rr__defer_get returns loop's queue with a reference added, making it if
// need be; NULL when out of memory.  rr__defer_unref drops a reference
// (NULL is ignored); the queue must be empty when the last one goes.
rr__defer *rr__defer_get(struct ev_loop *loop);
void rr__defer_unref(rr__defer *q);

static inline void
rr__defer_node_init(rr__defer_node *n, rr__defer_fn fn)
{
    n->next = n->prev = NULL;
    n->fn = fn;
    n->seq = 0;
    n->queued = false;
}

// rr__defer_post appends n, which runs n->fn from the loop later; it
// never runs anything now.  A node already queued stays where it is.
void rr__defer_post(rr__defer *q, rr__defer_node *n);

// rr__defer_cancel takes n off the queue, in O(1); its function will not
// run.  A node not queued is left alone.  Inline for the common case.
void rr__defer_cancel_slow(rr__defer *q, rr__defer_node *n);

static inline void
rr__defer_cancel(rr__defer *q, rr__defer_node *n)
{
    if (n->queued)
        rr__defer_cancel_slow(q, n);
}

// rr__defer_queued tells whether n waits in a queue.
static inline bool
rr__defer_queued(const rr__defer_node *n)
{
    return n->queued;
}

#endif // RR_DEFER_H
