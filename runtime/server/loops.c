// SPDX-License-Identifier: MIT
//
// loops.c -- a server's extra event loops; see loops.h.

#include "server/loops.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server.h"
#include "util/container.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/loopthread.h"

typedef struct handed {
    int fd;
    socklen_t len;
    struct sockaddr_storage ss;
} handed;

typedef struct loop_worker {
    rr__loops *ls;
    rr__loopthread *t;
    rr_server *srv;
    unsigned index;      // in rr_loop_cb terms: 1 for the first extra loop
    bool shutdown_begun; // on this loop only
} loop_worker;

struct rr__loops {
    struct ev_loop *parent_loop;
    ev_async done_async; // on the parent's loop
    atomic_uint n_done;
    void (*done)(void *arg);
    void *arg;
    rr_server *owner; // what the per-loop hooks are given
    rr_loop_cb loop_init, loop_fini;
    void *loop_arg;
    bool started;
    unsigned n;
    loop_worker w[];
};

// A child finished its shutdown (on the child's loop).
static void
child_shutdown_done(rr_server *srv, void *arg)
{
    loop_worker *w = arg;

    (void) srv;
    atomic_fetch_add(&w->ls->n_done, 1);
    ev_async_send(w->ls->parent_loop, &w->ls->done_async);
}

static void
worker_init(struct ev_loop *loop, void *arg)
{
    loop_worker *w = arg;

    if (w->ls->loop_init != NULL)
        w->ls->loop_init(w->ls->owner, loop, w->index, w->ls->loop_arg);
}

static void
worker_fini(struct ev_loop *loop, void *arg)
{
    loop_worker *w = arg;

    if (w->ls->loop_fini != NULL)
        w->ls->loop_fini(w->ls->owner, loop, w->index, w->ls->loop_arg);
}

// The last task on a child's loop: the child server goes.
static void
worker_last(struct ev_loop *loop, void *arg)
{
    loop_worker *w = arg;

    (void) loop;
    rr_server_free(w->srv);
    w->srv = NULL;
}

static void
hand_task(struct ev_loop *loop, void *arg, void *data)
{
    loop_worker *w = arg;
    const handed *h = data;

    (void) loop;
    rr__server_adopt(w->srv, h->fd, (const struct sockaddr *) &h->ss, h->len);
}

static void
hand_drop(void *arg, void *data)
{
    (void) arg;
    close(((handed *) data)->fd);
}

static void
shutdown_task(struct ev_loop *loop, void *arg, void *data)
{
    loop_worker *w = arg;
    double grace;

    (void) loop;
    memcpy(&grace, data, sizeof(grace));
    if (!w->shutdown_begun) {
        w->shutdown_begun = true;
        rr_server_shutdown(w->srv, grace, child_shutdown_done, w);
    }
}

// Every child's shutdown may be done (on the parent's loop).
static void
loops_done_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void) loop;
    (void) revents;
    rr__loops *ls = RR_CONTAINER_OF(a, rr__loops, done_async);

    if (rr__loops_done(ls))
        ls->done(ls->arg);
}

int
rr__loops_new(rr__loops **out, struct ev_loop *parent_loop, unsigned n,
              rr_server *owner, const rr_server_opts *opts,
              rr__methods *methods, void (*done)(void *arg), void *arg)
{
    rr__loops *ls = calloc(1, sizeof(*ls) + n * sizeof(loop_worker));
    rr_server_opts child = *opts;

    if (ls == NULL)
        return RR_ENOMEM;
    child.loops = 1;
    child.loop_init = child.loop_fini = NULL; // run here, for the owner
    ls->parent_loop = parent_loop;
    ls->done = done;
    ls->arg = arg;
    ls->owner = owner;
    ls->loop_init = opts->loop_init;
    ls->loop_fini = opts->loop_fini;
    ls->loop_arg = opts->loop_arg;
    atomic_init(&ls->n_done, 0);
    for (unsigned i = 0; i < n; i++) {
        loop_worker *w = &ls->w[i];
        w->ls = ls;
        w->index = i + 1;
        int rv = rr__loopthread_new(&w->t);
        if (rv != RR_OK)
            rr__set_last_error("rr_server_new: cannot make loop %u: %s", i + 1,
                               rr_strerror(rv));
        if (rv == RR_OK) {
            rv = rr__server_new_child(&w->srv, rr__loopthread_loop(w->t),
                                      &child, methods);
            if (rv != RR_OK)
                rr__loopthread_free(w->t);
        }
        if (rv != RR_OK) {
            rr__loops_free(ls);
            return rv; // RR_EMFILE, say, with rr_last_error set
        }
        ls->n++;
    }
    ev_async_init(&ls->done_async, loops_done_cb);
    ev_async_start(parent_loop, &ls->done_async);
    ev_unref(parent_loop); // the hand-back alone must not keep it running
    *out = ls;
    return RR_OK;
}

unsigned
rr__loops_count(const rr__loops *ls)
{
    return ls->n;
}

int
rr__loops_start(rr__loops *ls)
{
    if (ls->started)
        return RR_OK;
    ls->started = true;
    for (unsigned i = 0; i < ls->n; i++) {
        loop_worker *w = &ls->w[i];
        if (rr__loopthread_start(w->t, worker_init, worker_fini, w) != RR_OK) {
            rr__log(RR_LOG_ERROR, "cannot start loop thread %u of %u", i + 1,
                    ls->n);
            return RR_ENOMEM; // the ones started stop in rr__loops_free
        }
    }
    return RR_OK;
}

void
rr__loops_hand(rr__loops *ls, unsigned i, int fd, const struct sockaddr *sa,
               socklen_t len)
{
    handed h = {.fd = fd};

    h.len = len <= sizeof(h.ss) ? len : (socklen_t) sizeof(h.ss);
    memcpy(&h.ss, sa, h.len);
    if (rr__loopthread_post(ls->w[i].t, hand_task, hand_drop, &ls->w[i], &h,
                            sizeof(h)) != RR_OK)
        close(fd); // the peer sees EOF and may retry
}

void
rr__loops_shutdown(rr__loops *ls, double grace)
{
    if (!ls->started) { // no thread runs a child's loop: finish them here
        atomic_store(&ls->n_done, ls->n);
        ev_async_send(ls->parent_loop, &ls->done_async);
        return;
    }
    for (unsigned i = 0; i < ls->n; i++) {
        if (rr__loopthread_post(ls->w[i].t, shutdown_task, NULL, &ls->w[i],
                                &grace, sizeof(grace)) != RR_OK) {
            rr__log(RR_LOG_ERROR, "loop %u: cannot ask it to shut down", i + 1);
            atomic_fetch_add(&ls->n_done, 1); // or the shutdown never ends
            ev_async_send(ls->parent_loop, &ls->done_async);
        }
    }
}

bool
rr__loops_done(const rr__loops *ls)
{
    return atomic_load(&ls->n_done) >= ls->n;
}

void
rr__loops_free(rr__loops *ls)
{
    if (ls == NULL)
        return;
    for (unsigned i = 0; i < ls->n; i++) {
        loop_worker *w = &ls->w[i];
        // On its own thread, or here for a thread that never started.
        rr__loopthread_stop(w->t, worker_last, w);
        rr__loopthread_free(w->t);
    }
    if (ls->parent_loop != NULL && ev_is_active(&ls->done_async)) {
        ev_ref(ls->parent_loop);
        ev_async_stop(ls->parent_loop, &ls->done_async);
    }
    free(ls);
}
