// SPDX-License-Identifier: MIT
//
// test_scratch.c -- the per-loop read buffer: everything on one loop
// gets the same buffer, another loop its own, and the last reference
// frees it (valgrind and LeakSanitizer see the rest); gets and unrefs
// from several threads at once keep the count right.

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "transport/scratch.h"

static void
test_scratch_one_per_loop(void **state)
{
    (void) state;
    struct ev_loop *one = ev_loop_new(EVFLAG_AUTO);
    struct ev_loop *other = ev_loop_new(EVFLAG_AUTO);
    rr_scratch *a = rr__scratch_get(one);
    rr_scratch *b = rr__scratch_get(one);
    rr_scratch *c = rr__scratch_get(other);

    assert_non_null(a);
    assert_non_null(c);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_ptr_equal(a->loop, one);
    assert_false(a->busy);
    assert_int_equal(atomic_load(&a->refs), 2);
    assert_int_equal(atomic_load(&c->refs), 1);
    rr__scratch_unref(c);
    rr__scratch_unref(b);
    assert_int_equal(atomic_load(&a->refs), 1);
    rr__scratch_unref(a);
    c = rr__scratch_get(other); // a fresh one, freed again
    assert_int_equal(atomic_load(&c->refs), 1);
    rr__scratch_unref(c);
    rr__scratch_unref(NULL);
    ev_loop_destroy(one);
    ev_loop_destroy(other);
}

typedef struct churn {
    struct ev_loop *loop;
    int rounds;
} churn;

static void *
churn_main(void *arg)
{
    churn *c = arg;

    for (int i = 0; i < c->rounds; i++)
        rr__scratch_unref(rr__scratch_get(c->loop));
    return NULL;
}

// Each thread gets and drops the shared loop's buffer (held throughout
// by the test) and a loop's of its own that comes and goes.
static void
test_scratch_threads(void **state)
{
    (void) state;
    struct ev_loop *shared = ev_loop_new(EVFLAG_AUTO);
    rr_scratch *held = rr__scratch_get(shared);
    pthread_t t[4];
    churn c[4];

    for (int i = 0; i < 4; i++) {
        // Only a loop's address keys its buffer: the odd threads use one
        // of their own, never run.
        c[i].loop = i % 2 == 0 ? shared : (struct ev_loop *) &c[i];
        c[i].rounds = 200;
        assert_int_equal(pthread_create(&t[i], NULL, churn_main, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&held->refs), 1);
    assert_ptr_equal(rr__scratch_get(shared), held);
    rr__scratch_unref(held);
    rr__scratch_unref(held);
    ev_loop_destroy(shared);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scratch_one_per_loop),
        cmocka_unit_test(test_scratch_threads),
    };
    return cmocka_run_group_tests_name("scratch", tests, NULL, NULL);
}
