// SPDX-License-Identifier: MIT
//
// defer.c -- the per-loop deferred-completion queue; see defer.h.
//
// libev queues the check watchers of an iteration after its I/O and
// timer events and runs each priority's pending watchers newest first, so
// the check runs at the start of the callbacks of the iteration after the
// one that posted; the active idle watcher makes that iteration's poll
// return at once.  The drain holds a reference to the queue: a node's
// function may drop the last one its owner held.

#include "util/defer.h"

#include <assert.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

static void defer_check_cb(struct ev_loop *loop, ev_check *w, int revents);
static void defer_idle_cb(struct ev_loop *loop, ev_idle *w, int revents);

// Every loop's queue; the lock is taken only to get or free one.
static pthread_mutex_t defer_mu = PTHREAD_MUTEX_INITIALIZER;
static rr__defer *defer_list;

rr__defer *
rr__defer_get(struct ev_loop *loop)
{
    rr__defer *q;

    pthread_mutex_lock(&defer_mu);
    for (q = defer_list; q != NULL; q = q->next) {
        // One whose count reached 0 is about to be freed: not reusable.
        unsigned n = atomic_load(&q->refs);
        if (q->loop == loop && n > 0 &&
            atomic_compare_exchange_strong(&q->refs, &n, n + 1))
            break;
    }
    if (q == NULL && (q = calloc(1, sizeof(*q))) != NULL) {
        q->loop = loop;
        atomic_init(&q->refs, 1);
        ev_check_init(&q->check, defer_check_cb);
        ev_idle_init(&q->idle, defer_idle_cb);
        q->next = defer_list;
        defer_list = q;
    }
    pthread_mutex_unlock(&defer_mu);
    return q;
}

void
rr__defer_unref(rr__defer *q)
{
    if (q == NULL || atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    // Empty, so its watchers are stopped: safe from any thread.
    assert(q->head == NULL && "rr__defer_unref: nodes still queued");
    pthread_mutex_lock(&defer_mu);
    for (rr__defer **pp = &defer_list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    pthread_mutex_unlock(&defer_mu);
    free(q);
}

// The watchers run exactly while a node waits.
static void
defer_watch(rr__defer *q)
{
    if (!ev_is_active(&q->check)) {
        ev_check_start(q->loop, &q->check);
        ev_idle_start(q->loop, &q->idle);
    }
}

static void
defer_unwatch(rr__defer *q)
{
    ev_check_stop(q->loop, &q->check);
    ev_idle_stop(q->loop, &q->idle);
}

void
rr__defer_post(rr__defer *q, rr__defer_node *n)
{
    if (n->queued)
        return;
    n->queued = true;
    n->seq = q->seq++;
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail != NULL)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    defer_watch(q);
}

static void
defer_unlink(rr__defer *q, rr__defer_node *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->next = n->prev = NULL;
    n->queued = false;
}

void
rr__defer_cancel_slow(rr__defer *q, rr__defer_node *n)
{
    defer_unlink(q, n);
    if (q->head == NULL)
        defer_unwatch(q);
}

// Runs the nodes posted before this drain began, oldest first.  Nodes
// are in posting order, so the head has the smallest sequence number.  A
// drain nested in a function that ran the loop again takes over the rest
// of ours, and ours then finds the head newer than its snapshot.
static void
defer_drain(rr__defer *q)
{
    uint64_t end = q->seq;
    rr__defer_node *n;

    atomic_fetch_add(&q->refs, 1);
    while ((n = q->head) != NULL && n->seq < end) {
        defer_unlink(q, n);
        n->fn(n); // may free anything but q, post, cancel, run the loop
    }
    if (q->head == NULL)
        defer_unwatch(q);
    rr__defer_unref(q);
}

static void
defer_check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void) loop;
    (void) revents;
    char *q = (char *) w - offsetof(rr__defer, check); // container-of

    defer_drain((rr__defer *) (void *) q);
}

// Only there so that the poll does not block while nodes wait.
static void
defer_idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void) loop;
    (void) w;
    (void) revents;
}
