// SPDX-License-Identifier: MIT
//
// loopthread.c -- an event loop on its own thread; see loopthread.h.

#include "util/loopthread.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawrpc/rawrpc.h"
#include "util/container.h"
#include "util/errmap.h"

typedef struct lt_task lt_task;
struct lt_task {
    lt_task *next;
    rr__loopthread_fn fn;
    void (*drop)(void *arg, void *data);
    void *arg;
    unsigned char data[RR__LOOPTHREAD_DATA];
};

struct rr__loopthread {
    struct ev_loop *loop;
    pthread_t thread;
    bool started;
    rr__loopthread_hook init, fini;
    void *arg;
    ev_async wake;
    // the mailbox, under mu
    pthread_mutex_t mu;
    lt_task *head, **tail;
    bool closed;      // stopping: no more posts
    bool stop_wanted; // after the tasks queued before it
    rr__loopthread_hook last;
    void *last_arg;
};

// Takes the queued tasks, oldest first.
static lt_task *
lt_take(rr__loopthread *t, bool *stop)
{
    pthread_mutex_lock(&t->mu);
    lt_task *list = t->head;
    t->head = NULL;
    t->tail = &t->head;
    *stop = t->stop_wanted;
    pthread_mutex_unlock(&t->mu);
    return list;
}

// The mailbox is not empty (on the loop's thread).
static void
lt_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void) revents;
    rr__loopthread *t = RR_CONTAINER_OF(a, rr__loopthread, wake);
    bool stop;
    lt_task *list = lt_take(t, &stop);

    while (list != NULL) {
        lt_task *task = list;
        list = task->next;
        task->fn(loop, task->arg, task->data);
        free(task);
    }
    if (stop) {
        if (t->last != NULL)
            t->last(loop, t->last_arg);
        ev_async_stop(loop, &t->wake);
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *
lt_main(void *arg)
{
    rr__loopthread *t = arg;

    if (t->init != NULL)
        t->init(t->loop, t->arg);
    ev_run(t->loop, 0); // until the stop
    if (t->fini != NULL) {
        t->fini(t->loop, t->arg);
        ev_run(t->loop, EVRUN_NOWAIT); // what the hook closed finishes
    }
    return NULL;
}

int
rr__loopthread_new(rr__loopthread **out)
{
    rr__loopthread *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (t == NULL)
        return RR_ENOMEM;
    errno = 0;
    if ((t->loop = ev_loop_new(EVFLAG_AUTO)) == NULL) {
        int err = errno;
        free(t);
        return err == EMFILE || err == ENFILE ? rr__err_from_errno(err)
                                              : RR_ENOMEM;
    }
    // ev_async_start makes the loop's wake-up descriptor, and libev
    // aborts the process when it cannot: make sure one is free.
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe < 0) {
        int err = errno;
        ev_loop_destroy(t->loop);
        free(t);
        return rr__err_from_errno(err);
    }
    close(probe);
    pthread_mutex_init(&t->mu, NULL);
    t->tail = &t->head;
    ev_async_init(&t->wake, lt_wake_cb);
    ev_async_start(t->loop, &t->wake); // keeps the loop running
    *out = t;
    return RR_OK;
}

struct ev_loop *
rr__loopthread_loop(const rr__loopthread *t)
{
    return t->loop;
}

int
rr__loopthread_start(rr__loopthread *t, rr__loopthread_hook init,
                     rr__loopthread_hook fini, void *arg)
{
    t->init = init;
    t->fini = fini;
    t->arg = arg;
    if (pthread_create(&t->thread, NULL, lt_main, t) != 0)
        return RR_ENOMEM;
    t->started = true;
    // Tasks posted before the start wait for a wake-up.
    ev_async_send(t->loop, &t->wake);
    return RR_OK;
}

int
rr__loopthread_post(rr__loopthread *t, rr__loopthread_fn fn,
                    void (*drop)(void *arg, void *data), void *arg,
                    const void *data, size_t len)
{
    if (len > RR__LOOPTHREAD_DATA)
        return RR_EINVAL;
    lt_task *task = malloc(sizeof(*task));
    if (task == NULL)
        return RR_ENOMEM;
    task->next = NULL;
    task->fn = fn;
    task->drop = drop;
    task->arg = arg;
    if (len > 0)
        memcpy(task->data, data, len);
    pthread_mutex_lock(&t->mu);
    if (t->closed) {
        pthread_mutex_unlock(&t->mu);
        free(task);
        return RR_EINVAL;
    }
    *t->tail = task;
    t->tail = &task->next;
    bool started = t->started;
    pthread_mutex_unlock(&t->mu);
    if (started)
        ev_async_send(t->loop, &t->wake);
    return RR_OK;
}

// Gives each task that will never run to its drop.
static void
lt_drop(lt_task *list)
{
    while (list != NULL) {
        lt_task *task = list;
        list = task->next;
        if (task->drop != NULL)
            task->drop(task->arg, task->data);
        free(task);
    }
}

void
rr__loopthread_stop(rr__loopthread *t, rr__loopthread_hook last, void *arg)
{
    pthread_mutex_lock(&t->mu);
    bool again = t->closed;
    t->closed = true;
    pthread_mutex_unlock(&t->mu);
    if (again)
        return;
    if (!t->started) {
        bool stop;
        lt_drop(lt_take(t, &stop));
        if (last != NULL)
            last(t->loop, arg);
        return;
    }
    pthread_mutex_lock(&t->mu);
    t->stop_wanted = true;
    t->last = last;
    t->last_arg = arg;
    pthread_mutex_unlock(&t->mu);
    ev_async_send(t->loop, &t->wake);
    pthread_join(t->thread, NULL);
}

void
rr__loopthread_free(rr__loopthread *t)
{
    if (t == NULL)
        return;
    rr__loopthread_stop(t, NULL, NULL);
    bool stop;
    lt_drop(lt_take(t, &stop)); // none after a stop; kept for safety
    if (ev_is_active(&t->wake))
        ev_async_stop(t->loop, &t->wake);
    ev_loop_destroy(t->loop);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
