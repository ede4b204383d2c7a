// SPDX-License-Identifier: MIT
//
// loops.c -- a server's extra event loops; see loops.h.

#include "util/container.h"
#include "server/loops.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/conn.h"
#include "util/log.h"
#include "server/server.h"

typedef struct handed {
    int fd;
    socklen_t len;
    struct sockaddr_storage ss;
} handed;

typedef struct loop_worker {
    rr__loops *ls;
    pthread_t thread;
    struct ev_loop *loop;
    rr_server *srv;
    unsigned index; // in rr_loop_cb terms: 1 for the first extra loop
    ev_async wake;
    bool shutdown_begun; // on this loop only
    // the mailbox, under mu
    pthread_mutex_t mu;
    handed *fds;
    size_t n_fds, cap_fds;
    bool shutdown_wanted, stop_wanted;
    double grace;
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

// The mailbox is not empty (on the child's loop).
static void
worker_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void) revents;
    loop_worker *w = RR_CONTAINER_OF(a, loop_worker, wake);

    pthread_mutex_lock(&w->mu);
    handed *fds = w->fds;
    size_t n = w->n_fds;
    bool shut = w->shutdown_wanted, stop = w->stop_wanted;
    double grace = w->grace;
    w->fds = NULL;
    w->n_fds = w->cap_fds = 0;
    pthread_mutex_unlock(&w->mu);

    for (size_t i = 0; i < n; i++) {
        if (stop)
            close(fds[i].fd);
        else
            rr__server_adopt(w->srv, fds[i].fd,
                             (const struct sockaddr *) &fds[i].ss, fds[i].len);
    }
    free(fds);
    if (shut && !stop && !w->shutdown_begun) {
        w->shutdown_begun = true;
        rr_server_shutdown(w->srv, grace, child_shutdown_done, w);
    }
    if (stop) {
        rr_server_free(w->srv);
        w->srv = NULL;
        ev_async_stop(loop, &w->wake);
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *
worker_main(void *arg)
{
    loop_worker *w = arg;
    rr__loops *ls = w->ls;

    if (ls->loop_init != NULL)
        ls->loop_init(ls->owner, w->loop, w->index, ls->loop_arg);
    ev_run(w->loop, 0); // until the stop: the child server is freed
    if (ls->loop_fini != NULL) {
        ls->loop_fini(ls->owner, w->loop, w->index, ls->loop_arg);
        ev_run(w->loop, EVRUN_NOWAIT); // what the hook closed finishes
    }
    return NULL;
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
              void (*done)(void *arg), void *arg)
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
    for (unsigned i = 0; i < n; i++, ls->n++) {
        loop_worker *w = &ls->w[i];
        int rv = RR_ENOMEM;
        w->ls = ls;
        w->index = i + 1;
        w->loop = ev_loop_new(EVFLAG_AUTO);
        if (w->loop == NULL ||
            (rv = rr_server_new(&w->srv, w->loop, &child)) != RR_OK) {
            if (w->loop != NULL)
                ev_loop_destroy(w->loop);
            rr__loops_free(ls);
            return rv; // RR_EMFILE, say, with rr_last_error set
        }
        pthread_mutex_init(&w->mu, NULL);
        ev_async_init(&w->wake, worker_wake_cb);
        ev_async_start(w->loop, &w->wake); // keeps the child's loop running
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

rr_server *
rr__loops_server(rr__loops *ls, unsigned i)
{
    return ls->w[i].srv;
}

int
rr__loops_start(rr__loops *ls)
{
    if (ls->started)
        return RR_OK;
    for (unsigned i = 0; i < ls->n; i++) {
        if (pthread_create(&ls->w[i].thread, NULL, worker_main, &ls->w[i]) !=
            0) {
            rr__log(RR_LOG_ERROR, "cannot start loop thread %u of %u", i + 1,
                    ls->n);
            // The ones started are stopped by rr__loops_free.
            for (unsigned j = i; j < ls->n; j++)
                ls->w[j].thread = pthread_self();
            ls->started = true;
            return RR_ENOMEM;
        }
    }
    ls->started = true;
    return RR_OK;
}

bool
rr__loops_started(const rr__loops *ls)
{
    return ls->started;
}

void
rr__loops_hand(rr__loops *ls, unsigned i, int fd, const struct sockaddr *sa,
               socklen_t len)
{
    loop_worker *w = &ls->w[i];

    pthread_mutex_lock(&w->mu);
    if (w->n_fds == w->cap_fds) {
        size_t cap = w->cap_fds ? w->cap_fds * 2 : 16;
        handed *p = realloc(w->fds, cap * sizeof(*p));
        if (p == NULL) {
            pthread_mutex_unlock(&w->mu);
            close(fd); // the peer sees EOF and may retry
            return;
        }
        w->fds = p;
        w->cap_fds = cap;
    }
    handed *h = &w->fds[w->n_fds++];
    h->fd = fd;
    h->len = len <= sizeof(h->ss) ? len : (socklen_t) sizeof(h->ss);
    memcpy(&h->ss, sa, h->len);
    pthread_mutex_unlock(&w->mu);
    ev_async_send(w->loop, &w->wake);
}

// Posts a command to every child.
static void
loops_post(rr__loops *ls, bool stop, double grace)
{
    for (unsigned i = 0; i < ls->n; i++) {
        loop_worker *w = &ls->w[i];
        pthread_mutex_lock(&w->mu);
        if (stop)
            w->stop_wanted = true;
        else {
            w->shutdown_wanted = true;
            w->grace = grace;
        }
        pthread_mutex_unlock(&w->mu);
        ev_async_send(w->loop, &w->wake);
    }
}

void
rr__loops_shutdown(rr__loops *ls, double grace)
{
    if (!ls->started) { // no thread runs a child's loop: finish them here
        atomic_store(&ls->n_done, ls->n);
        ev_async_send(ls->parent_loop, &ls->done_async);
        return;
    }
    loops_post(ls, false, grace);
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
    if (ls->started)
        loops_post(ls, true, 0);
    for (unsigned i = 0; i < ls->n; i++) {
        loop_worker *w = &ls->w[i];
        if (ls->started && !pthread_equal(w->thread, pthread_self()))
            pthread_join(w->thread, NULL);
        else if (w->srv != NULL) // never ran: free it from here
            rr_server_free(w->srv);
        for (size_t j = 0; j < w->n_fds; j++)
            close(w->fds[j].fd);
        free(w->fds);
        pthread_mutex_destroy(&w->mu);
        ev_loop_destroy(w->loop);
    }
    if (ls->parent_loop != NULL && ev_is_active(&ls->done_async)) {
        ev_ref(ls->parent_loop);
        ev_async_stop(ls->parent_loop, &ls->done_async);
    }
    free(ls);
}
