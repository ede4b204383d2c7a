// SPDX-License-Identifier: MIT
//
// test_idmap.c -- call ID -> pointer map, checked against a plain array
// under heavy insert/delete churn (random keys collide in the ring, and
// backward-shift deletion in the overflow table must never lose an
// entry), and on the call patterns it is built for.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/idmap.h"
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

// Random puts and deletes of keys k * stride + 1 against a plain array.
static void
churn(uint32_t stride)
{
    enum { KEYS = 4096, STEPS = 200000 };
    static char present[KEYS];
    rr_idmap m;
    uint32_t rng = 12345;

    memset(present, 0, sizeof(present));
    rr__idmap_init(&m);
    for (int i = 0; i < STEPS; i++) {
        rng = rng * 1103515245u + 12345u;
        uint32_t k = (rng >> 8) % KEYS;
        uint32_t key = k * stride + 1;
        void *val = (void *) ((uintptr_t) key * 8);
        if (present[k]) {
            assert_ptr_equal(rr__idmap_del(&m, key), val);
            present[k] = 0;
        } else {
            assert_int_equal(rr__idmap_put(&m, key, val), RR_OK);
            present[k] = 1;
        }
    }
    size_t n = 0;
    for (uint32_t k = 0; k < KEYS; k++) {
        uint32_t key = k * stride + 1;
        void *want = present[k] ? (void *) ((uintptr_t) key * 8) : NULL;
        assert_ptr_equal(rr__idmap_get(&m, key), want);
        n += present[k] != 0;
    }
    assert_int_equal(m.count, n);
    rr__idmap_fini(&m);
}

static void
test_idmap_churn_matches_reference(void **state)
{
    (void) state;
    churn(1);        // mostly the ring
    churn(1u << 20); // one ring slot for all: the overflow table
}

static void
test_idmap_consecutive_ids_stay_in_ring(void **state)
{
    (void) state;
    rr_idmap m;
    int v;

    // A channel's calls in flight: a window of 64 consecutive IDs, the
    // oldest answered as the next is sent.  None may spill into the
    // overflow table, the slow path.
    rr__idmap_init(&m);
    for (uint32_t id = 1; id <= 64; id++)
        assert_int_equal(rr__idmap_put(&m, id, &v), RR_OK);
    for (uint32_t id = 65; id < 20000; id++) {
        assert_ptr_equal(rr__idmap_del(&m, id - 64), &v);
        assert_int_equal(rr__idmap_put(&m, id, &v), RR_OK);
        assert_int_equal(m.n_slots, 0);
    }
    assert_int_equal(m.count, 64);
    assert_int_equal(m.ring_cap, 128);
    rr__idmap_fini(&m);
}

static void
test_idmap_old_call_overflows_and_returns(void **state)
{
    (void) state;
    rr_idmap m;
    int old, v;
    uint32_t keys[64];

    // One call outlives thousands of short ones: the window wraps onto
    // its ring slot, and the newcomer goes to the overflow table.
    rr__idmap_init(&m);
    assert_int_equal(rr__idmap_put(&m, 1, &old), RR_OK);
    uint32_t id = 2;
    for (; m.n_slots == 0 && id < 100000; id++) {
        assert_int_equal(rr__idmap_put(&m, id, &v), RR_OK);
        if (id > 9)
            assert_ptr_equal(rr__idmap_del(&m, id - 8), &v);
    }
    assert_int_equal(m.n_slots, 1);
    uint32_t spilled = id - 1; // shares key 1's ring slot
    assert_int_equal(spilled & (m.ring_cap - 1), 1);
    assert_ptr_equal(rr__idmap_get(&m, 1), &old);
    assert_ptr_equal(rr__idmap_get(&m, spilled), &v);
    assert_int_equal(rr__idmap_keys(&m, keys), m.count);
    size_t seen = 0;
    for (size_t i = 0; i < m.count; i++)
        seen += keys[i] == 1 || keys[i] == spilled;
    assert_int_equal(seen, 2);
    // The old call ends; the spilled one is still found, then removed.
    assert_ptr_equal(rr__idmap_del(&m, 1), &old);
    assert_null(rr__idmap_get(&m, 1));
    assert_ptr_equal(rr__idmap_get(&m, spilled), &v);
    assert_ptr_equal(rr__idmap_del(&m, spilled), &v);
    assert_int_equal(m.n_slots, 0);
    // Draining with any() reaches what is left in the ring.
    uint32_t key;
    while (rr__idmap_any(&m, &key) != NULL)
        assert_ptr_equal(rr__idmap_del(&m, key), &v);
    assert_int_equal(m.count, 0);
    rr__idmap_fini(&m);
}

// Draining a map with rr__idmap_pop looks at each slot about once: the
// connection-close paths drain every call this way, and a scan from the
// first slot per entry made 65 536 calls cost 2^31 probes.
static void
test_idmap_pop_drains_in_linear_probes(void **state)
{
    (void) state;
    enum { N = 65536, SPILL = 512 };
    static unsigned char seen[N + SPILL + 1];
    rr_idmap m;
    rr_idmap_cursor cur = {0};

    memset(seen, 0, sizeof(seen));
    rr__idmap_init(&m);
    // A full ring of consecutive IDs, plus IDs that find their ring slot
    // taken and go to the overflow table.
    for (uint32_t id = 1; id <= N; id++)
        assert_int_equal(rr__idmap_put(&m, id, (void *) (uintptr_t) id), RR_OK);
    for (uint32_t i = 1; i <= SPILL; i++) {
        uint32_t id = i * (uint32_t) m.ring_cap + 7;
        assert_int_equal(rr__idmap_put(&m, id, (void *) (uintptr_t) id), RR_OK);
    }
    assert_true(m.n_slots >= SPILL);
    size_t total = m.count, slots = m.ring_cap + m.cap;
    uint32_t key;
    void *v;
    size_t n = 0;
    while ((v = rr__idmap_pop(&m, &cur, &key)) != NULL) {
        assert_ptr_equal(v, (void *) (uintptr_t) key);
        uint32_t idx = key <= N ? key : N + (key - 7) / (uint32_t) m.ring_cap;
        assert_true(idx <= N + SPILL);
        assert_int_equal(seen[idx], 0); // each entry exactly once
        seen[idx] = 1;
        n++;
    }
    assert_int_equal(n, total);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.n_slots, 0);
    // Every slot once, plus a second look at a table slot that a deletion
    // refilled by backward shift.
    assert_true(cur.probes <= slots + total);
    assert_null(rr__idmap_pop(&m, &cur, &key));

    // Entries deleted or put while a drain runs: none lost, none twice.
    for (uint32_t id = 1; id <= 64; id++)
        assert_int_equal(rr__idmap_put(&m, id, (void *) (uintptr_t) id), RR_OK);
    rr_idmap_cursor c2 = {0};
    memset(seen, 0, sizeof(seen));
    n = 0;
    while (rr__idmap_pop(&m, &c2, &key) != NULL) {
        assert_int_equal(seen[key], 0);
        seen[key] = 1;
        n++;
        if (key == 10) { // a callback completes another entry ...
            assert_ptr_equal(rr__idmap_del(&m, 50), (void *) (uintptr_t) 50);
            seen[50] = 1;
            n++;
        }
        if (key == 20) // ... or starts one behind the cursor
            assert_int_equal(rr__idmap_put(&m, 65, (void *) (uintptr_t) 65),
                             RR_OK);
    }
    assert_int_equal(n, 65);
    assert_int_equal(seen[65], 1);
    rr__idmap_fini(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_basic),
        cmocka_unit_test(test_idmap_churn_matches_reference),
        cmocka_unit_test(test_idmap_consecutive_ids_stay_in_ring),
        cmocka_unit_test(test_idmap_old_call_overflows_and_returns),
        cmocka_unit_test(test_idmap_pop_drains_in_linear_probes),
    };
    return cmocka_run_group_tests_name("idmap", tests, NULL, NULL);
}
