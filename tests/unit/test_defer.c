// SPDX-License-Identifier: MIT
//
// test_defer.c -- the per-loop deferred-completion queue: nothing runs at
// post, everything runs from the loop exactly once, in order, without
// blocking the loop while work waits and without keeping ev_run alive
// once none does; cancels, posts, frees and nested loops from inside a
// node's function.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/defer.h"

typedef struct fixture {
    struct ev_loop *loop;
    rr__defer *q;
    ev_timer guard; // fails the test if the loop blocks on it
} fixture;

typedef struct item {
    rr__defer_node node;
    fixture *fx;
    int runs;
    int order;            // when it ran, from *clock
    int *clock;           // shared between a test's items
    struct item *cancel;  // cancel this one when run
    struct item *repost;  // post this one when run
    bool free_self;       // the item is heap memory: free it when run
    bool unref;           // drop the test's reference to the queue
    bool nested_run;      // run the loop once more from inside
    struct item *nest_in; // post this before the nested run
} item;

static void
item_fn(rr__defer_node *n)
{
    item *it = (item *) (void *) ((char *) n - offsetof(item, node));
    fixture *fx = it->fx;

    it->runs++;
    if (it->clock != NULL)
        it->order = ++*it->clock;
    if (it->cancel != NULL)
        rr__defer_cancel(fx->q, &it->cancel->node);
    if (it->repost != NULL)
        rr__defer_post(fx->q, &it->repost->node);
    if (it->nested_run) {
        if (it->nest_in != NULL)
            rr__defer_post(fx->q, &it->nest_in->node);
        ev_run(fx->loop, EVRUN_ONCE);
    }
    if (it->unref) {
        rr__defer_unref(fx->q);
        fx->q = NULL;
    }
    if (it->free_self)
        free(it);
}

static void
item_init(item *it, fixture *fx, int *clock)
{
    memset(it, 0, sizeof(*it));
    rr__defer_node_init(&it->node, item_fn);
    it->fx = fx;
    it->clock = clock;
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) w;
    (void) revents;
    fail_msg("the loop blocked although work was queued");
}

static int
setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    if ((fx->loop = ev_loop_new(EVFLAG_AUTO)) == NULL) {
        free(fx);
        return -1;
    }
    if ((fx->q = rr__defer_get(fx->loop)) == NULL) {
        ev_loop_destroy(fx->loop);
        free(fx);
        return -1;
    }
    ev_timer_init(&fx->guard, guard_cb, 30.0, 0.);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture *fx = *state;

    ev_timer_stop(fx->loop, &fx->guard);
    rr__defer_unref(fx->q);
    ev_loop_destroy(fx->loop);
    free(fx);
    return 0;
}

static void
test_defer_runs_from_the_loop_never_at_post(void **state)
{
    fixture *fx = *state;
    int clock = 0;
    item a, b;

    item_init(&a, fx, &clock);
    item_init(&b, fx, &clock);
    rr__defer_post(fx->q, &a.node);
    rr__defer_post(fx->q, &b.node);
    rr__defer_post(fx->q, &a.node); // already queued: stays first
    assert_int_equal(a.runs + b.runs, 0);
    assert_true(rr__defer_queued(&a.node));
    // The queued work alone keeps ev_run going until it ran, then ends it.
    ev_run(fx->loop, 0);
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 1);
    assert_int_equal(a.order, 1);
    assert_int_equal(b.order, 2);
    assert_false(rr__defer_queued(&a.node));
    // Empty, the queue keeps nothing alive: this returns at once.
    ev_run(fx->loop, 0);
    assert_int_equal(a.runs, 1);
}

static void
test_defer_does_not_block_the_loop(void **state)
{
    fixture *fx = *state;
    item a;

    // A long timer is the only other watcher: a poll that blocked would
    // wait for it, and it fails the test.
    ev_timer_set(&fx->guard, 5.0, 0.);
    ev_timer_start(fx->loop, &fx->guard);
    item_init(&a, fx, NULL);
    rr__defer_post(fx->q, &a.node);
    ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(a.runs, 1);
}

static void
test_defer_cancel(void **state)
{
    fixture *fx = *state;
    int clock = 0;
    item a, b, c;

    item_init(&a, fx, &clock);
    item_init(&b, fx, &clock);
    item_init(&c, fx, &clock);
    rr__defer_post(fx->q, &a.node);
    rr__defer_post(fx->q, &b.node);
    rr__defer_post(fx->q, &c.node);
    rr__defer_cancel(fx->q, &b.node);
    rr__defer_cancel(fx->q, &b.node); // not queued: nothing
    a.cancel = &c;                    // a takes the next one off
    ev_run(fx->loop, 0);
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 0);
    assert_int_equal(c.runs, 0);
    // Cancelling the last node stops the watchers: ev_run returns at once.
    rr__defer_post(fx->q, &b.node);
    rr__defer_cancel(fx->q, &b.node);
    ev_run(fx->loop, 0);
    assert_int_equal(b.runs, 0);
}

static void
test_defer_posts_from_a_node_wait_for_the_next_drain(void **state)
{
    fixture *fx = *state;
    int clock = 0;
    item a, b;

    item_init(&a, fx, &clock);
    item_init(&b, fx, &clock);
    a.repost = &b;
    rr__defer_post(fx->q, &a.node);
    ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(a.runs, 1);
    // Not in the same drain: a callback that keeps posting never starves
    // the loop.
    assert_int_equal(b.runs, 0);
    ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(b.runs, 1);
    // A node may post itself again.
    b.repost = &b;
    rr__defer_post(fx->q, &b.node);
    for (int i = 0; i < 3; i++)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(b.runs, 4);
    rr__defer_cancel(fx->q, &b.node);
}

static void
test_defer_node_may_free_itself_and_the_queue(void **state)
{
    fixture *fx = *state;
    int clock = 0;
    item *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    item c;

    assert_non_null(a);
    assert_non_null(b);
    item_init(a, fx, &clock);
    item_init(b, fx, &clock);
    item_init(&c, fx, &clock);
    a->free_self = true;
    b->free_self = true;
    rr__defer_post(fx->q, &a->node);
    rr__defer_post(fx->q, &b->node);
    rr__defer_post(fx->q, &c.node);
    // c drops the last reference to the queue while it drains: the drain
    // holds its own, and frees the queue when it ends.
    c.unref = true;
    ev_run(fx->loop, 0);
    assert_int_equal(c.runs, 1);
    assert_null(fx->q);
    // The next get makes a new queue.
    fx->q = rr__defer_get(fx->loop);
    assert_non_null(fx->q);
}

static void
test_defer_nested_loop_runs_each_once(void **state)
{
    fixture *fx = *state;
    int clock = 0;
    item a, b, c, d;

    item_init(&a, fx, &clock);
    item_init(&b, fx, &clock);
    item_init(&c, fx, &clock);
    item_init(&d, fx, &clock);
    a.nested_run = true; // runs b and c (and d, posted now) in there
    a.nest_in = &d;
    rr__defer_post(fx->q, &a.node);
    rr__defer_post(fx->q, &b.node);
    rr__defer_post(fx->q, &c.node);
    ev_run(fx->loop, 0);
    assert_int_equal(a.runs + b.runs + c.runs + d.runs, 4);
    assert_int_equal(a.order, 1);
    assert_int_equal(b.order, 2);
    assert_int_equal(c.order, 3);
    assert_int_equal(d.order, 4);
}

static void
test_defer_one_queue_per_loop(void **state)
{
    fixture *fx = *state;
    struct ev_loop *other = ev_loop_new(EVFLAG_AUTO);
    rr__defer *a = rr__defer_get(fx->loop);
    rr__defer *b = rr__defer_get(other);

    assert_non_null(other);
    assert_ptr_equal(a, fx->q);
    assert_ptr_not_equal(a, b);
    assert_int_equal(atomic_load(&a->refs), 2);
    assert_int_equal(atomic_load(&b->refs), 1);
    rr__defer_unref(b);
    rr__defer_unref(a);
    rr__defer_unref(NULL);
    ev_loop_destroy(other);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defer_runs_from_the_loop_never_at_post),
        T(test_defer_does_not_block_the_loop),
        T(test_defer_cancel),
        T(test_defer_posts_from_a_node_wait_for_the_next_drain),
        T(test_defer_node_may_free_itself_and_the_queue),
        T(test_defer_nested_loop_runs_each_once),
        T(test_defer_one_queue_per_loop),
    };
#undef T
    return cmocka_run_group_tests_name("defer", tests, NULL, NULL);
}
