// SPDX-License-Identifier: MIT
//
// test_loopthread.c -- an event loop on its own thread: tasks run there,
// in the order posted, also those posted before the start; the last
// task runs after them and the fini hook after it; later posts are
// refused; a thread never started drops its tasks (each to its drop) and
// runs the last task on the caller's thread.

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rawrpc/rawrpc.h"
#include "util/loopthread.h"

typedef struct tlog {
    pthread_t caller;
    int seq[16];
    int n;
    bool on_other_thread; // every task ran off the caller's thread
    int dropped;
    bool last_after_tasks;
} tlog;

static void
note(struct ev_loop *loop, void *arg, void *data)
{
    tlog *l = arg;
    int v;

    (void) loop;
    memcpy(&v, data, sizeof(v));
    if (pthread_equal(pthread_self(), l->caller))
        l->on_other_thread = false;
    l->seq[l->n++] = v;
}

static void
drop(void *arg, void *data)
{
    tlog *l = arg;

    (void) data;
    l->dropped++;
}

static void
hook_init(struct ev_loop *loop, void *arg)
{
    (void) loop;
    int v = 100;
    note(NULL, arg, &v);
}

static void
hook_fini(struct ev_loop *loop, void *arg)
{
    (void) loop;
    int v = 200;
    note(NULL, arg, &v);
}

static void
last(struct ev_loop *loop, void *arg)
{
    tlog *l = arg;

    (void) loop;
    l->last_after_tasks = l->n == 4; // init and the three tasks
    int v = 150;
    note(NULL, arg, &v);
}

static void
test_loopthread_order(void **state)
{
    (void) state;
    rr__loopthread *t;
    tlog l = {.caller = pthread_self(), .on_other_thread = true};

    assert_int_equal(rr__loopthread_new(&t), RR_OK);
    assert_non_null(rr__loopthread_loop(t));
    int v = 1;
    assert_int_equal(rr__loopthread_post(t, note, drop, &l, &v, sizeof(v)),
                     RR_OK); // before the start: runs once it starts
    assert_int_equal(rr__loopthread_start(t, hook_init, hook_fini, &l), RR_OK);
    for (v = 2; v <= 3; v++)
        assert_int_equal(rr__loopthread_post(t, note, drop, &l, &v, sizeof(v)),
                         RR_OK);
    rr__loopthread_stop(t, last, &l); // joins: l is ours again
    v = 9;
    assert_int_equal(rr__loopthread_post(t, note, drop, &l, &v, sizeof(v)),
                     RR_EINVAL);
    rr__loopthread_free(t);
    int want[] = {100, 1, 2, 3, 150, 200};
    assert_int_equal(l.n, 6);
    assert_memory_equal(l.seq, want, sizeof(want));
    assert_true(l.on_other_thread);
    assert_true(l.last_after_tasks);
    assert_int_equal(l.dropped, 0);
}

static void
test_loopthread_never_started(void **state)
{
    (void) state;
    rr__loopthread *t;
    tlog l = {.caller = pthread_self(), .on_other_thread = true};
    char big[RR__LOOPTHREAD_DATA + 1] = {0};

    assert_int_equal(rr__loopthread_new(&t), RR_OK);
    int v = 1;
    assert_int_equal(rr__loopthread_post(t, note, drop, &l, &v, sizeof(v)),
                     RR_OK);
    assert_int_equal(rr__loopthread_post(t, note, drop, &l, big, sizeof(big)),
                     RR_EINVAL);
    assert_int_equal(rr__loopthread_post(t, note, NULL, &l, &v, sizeof(v)),
                     RR_OK); // no drop: just freed
    rr__loopthread_stop(t, last, &l);
    assert_int_equal(l.dropped, 1);
    assert_int_equal(l.n, 1); // only the last task ran, here
    assert_int_equal(l.seq[0], 150);
    rr__loopthread_stop(t, last, &l); // once only: a no-op
    assert_int_equal(l.n, 1);
    rr__loopthread_free(t);
}

// Freed without a stop: the thread is stopped and joined, with no last
// task, and the fini hook runs.
static void
test_loopthread_free_running(void **state)
{
    (void) state;
    rr__loopthread *t;
    tlog l = {.caller = pthread_self(), .on_other_thread = true};

    assert_int_equal(rr__loopthread_new(&t), RR_OK);
    assert_int_equal(rr__loopthread_start(t, NULL, hook_fini, &l), RR_OK);
    int v = 5;
    assert_int_equal(rr__loopthread_post(t, note, drop, &l, &v, sizeof(v)),
                     RR_OK);
    rr__loopthread_free(t);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.seq[0], 5);
    assert_int_equal(l.seq[1], 200);
    rr__loopthread_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopthread_order),
        cmocka_unit_test(test_loopthread_never_started),
        cmocka_unit_test(test_loopthread_free_running),
    };
    return cmocka_run_group_tests_name("loopthread", tests, NULL, NULL);
}
