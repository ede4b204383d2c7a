// SPDX-License-Identifier: MIT
//
// test_arena.c -- the per-call arena: small requests need no malloc,
// large ones spill into blocks that a reset frees (valgrind checks that).

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/arena.h"
#include "testmsg.pb-c.h"

static void
test_arena_small_stays_inline(void **state)
{
    (void) state;
    rr_arena a;
    Rrtest__Echo e = RRTEST__ECHO__INIT;
    char text[] = "small";
    uint8_t buf[64];

    e.text = text;
    size_t n = rrtest__echo__pack(&e, buf);
    rr__arena_init(&a);
    Rrtest__Echo *u = rrtest__echo__unpack(&a.alloc, n, buf);
    assert_non_null(u);
    assert_string_equal(u->text, "small");
    assert_null(a.blocks); // no malloc at all
    assert_true((unsigned char *) u >= a.first &&
                (unsigned char *) u < a.first + sizeof(a.first));
    assert_int_equal((uintptr_t) u % 16, 0);
    rr__arena_reset(&a);
}

static void
test_arena_large_spills_and_resets(void **state)
{
    (void) state;
    rr_arena a;
    static uint8_t data[20000], buf[20100];
    Rrtest__Echo e = RRTEST__ECHO__INIT;

    memset(data, 7, sizeof(data));
    e.data.data = data;
    e.data.len = sizeof(data);
    size_t n = rrtest__echo__pack(&e, buf);
    rr__arena_init(&a);
    void *kept = NULL;
    for (int round = 0; round < 3; round++) {
        Rrtest__Echo *u = rrtest__echo__unpack(&a.alloc, n, buf);
        assert_non_null(u);
        assert_int_equal(u->data.len, sizeof(data));
        assert_memory_equal(u->data.data, data, sizeof(data));
        assert_non_null(a.blocks);
        // After the first round the block the reset kept is reused: steady
        // traffic of 20 KB messages allocates nothing.
        if (round > 0)
            assert_ptr_equal(a.blocks, kept);
        rr__arena_reset(&a);
        assert_null(a.blocks);
        assert_non_null(a.spare);
        kept = a.spare;
    }
    rr__arena_fini(&a); // valgrind: the kept block goes too
    assert_null(a.spare);
}

static void
test_arena_huge_block_is_not_kept(void **state)
{
    (void) state;
    rr_arena a;

    rr__arena_init(&a);
    assert_non_null(a.alloc.alloc(a.alloc.allocator_data, RR_ARENA_KEEP + 1));
    rr__arena_reset(&a);
    assert_null(a.spare); // larger than RR_ARENA_KEEP: given back
    rr__arena_fini(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_small_stays_inline),
        cmocka_unit_test(test_arena_large_spills_and_resets),
        cmocka_unit_test(test_arena_huge_block_is_not_kept),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
