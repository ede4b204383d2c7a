// SPDX-License-Identifier: MIT
//
// test_idmap.c -- call ID -> pointer map, checked against a plain array
// under heavy insert/delete churn (backward-shift deletion must never lose
// an entry).

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "idmap.h"
#include "rawrpc/rawrpc.h"

static void
test_idmap_basic(void **state)
{
    (void) state;
    rr_idmap m;
    int a, b;

    rr__idmap_init(&m);
    assert_null(rr__idmap_get(&m, 1));
    assert_null(rr__idmap_del(&m, 1));
    assert_null(rr__idmap_any(&m, NULL));
    assert_int_equal(rr__idmap_put(&m, 1, &a), RR_OK);
    assert_int_equal(rr__idmap_put(&m, 0xFFFFFFFFu, &b), RR_OK);
    assert_ptr_equal(rr__idmap_get(&m, 1), &a);
    assert_ptr_equal(rr__idmap_get(&m, 0xFFFFFFFFu), &b);
    assert_int_equal(m.count, 2);
    assert_ptr_equal(rr__idmap_del(&m, 1), &a);
    assert_null(rr__idmap_get(&m, 1));
    uint32_t key = 0;
    assert_ptr_equal(rr__idmap_any(&m, &key), &b);
    assert_int_equal(key, 0xFFFFFFFFu);
    rr__idmap_fini(&m);
}

static void
test_idmap_churn_matches_reference(void **state)
{
    (void) state;
    enum { KEYS = 4096, STEPS = 200000 };
    static char present[KEYS];
    rr_idmap m;
    uint32_t rng = 12345;

    rr__idmap_init(&m);
    for (int i = 0; i < STEPS; i++) {
        rng = rng * 1103515245u + 12345u;
        uint32_t k = 1 + (rng >> 8) % (KEYS - 1);
        void *val = (void *) (uintptr_t) (k * 8);
        if (present[k]) {
            assert_ptr_equal(rr__idmap_del(&m, k), val);
            present[k] = 0;
        } else {
            assert_int_equal(rr__idmap_put(&m, k, val), RR_OK);
            present[k] = 1;
        }
    }
    size_t n = 0;
    for (uint32_t k = 1; k < KEYS; k++) {
        void *want = present[k] ? (void *) (uintptr_t) (k * 8) : NULL;
        assert_ptr_equal(rr__idmap_get(&m, k), want);
        n += present[k] != 0;
    }
    assert_int_equal(m.count, n);
    rr__idmap_fini(&m);
}

// The longest run of occupied slots, wrapping: what a miss or a delete
// may have to scan.
static size_t
longest_run(const rr_idmap *m)
{
    size_t best = 0, run = 0;

    for (size_t i = 0; i < 2 * m->cap; i++) {
        run = m->slots[i & (m->cap - 1)].key != 0 ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best < m->cap ? best : m->cap;
}

static void
test_idmap_consecutive_ids_stay_spread(void **state)
{
    (void) state;
    rr_idmap m;
    int v;
    size_t worst = 0;

    // A channel's calls in flight: a window of 64 consecutive IDs, the
    // oldest answered as the next is sent.
    rr__idmap_init(&m);
    for (uint32_t id = 1; id <= 64; id++)
        assert_int_equal(rr__idmap_put(&m, id, &v), RR_OK);
    for (uint32_t id = 65; id < 20000; id++) {
        assert_ptr_equal(rr__idmap_del(&m, id - 64), &v);
        assert_int_equal(rr__idmap_put(&m, id, &v), RR_OK);
        size_t run = longest_run(&m);
        worst = run > worst ? run : worst;
    }
    // Half full, evenly spread: runs of at most 3 slots.  (The product's
    // low bits, hashed before, gave runs of 8, and a delete cost three
    // times the instructions.)
    assert_true(worst <= 4);
    rr__idmap_fini(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_basic),
        cmocka_unit_test(test_idmap_churn_matches_reference),
        cmocka_unit_test(test_idmap_consecutive_ids_stay_spread),
    };
    return cmocka_run_group_tests_name("idmap", tests, NULL, NULL);
}
