// SPDX-License-Identifier: MIT
//
// test_buf.c -- the capped growable buffer.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "codec/buf.h"
#include "rawrpc/rawrpc.h"

static void
test_buf_init_allocates_nothing(void **state)
{
    (void) state;
    rr_buf b;

    rr__buf_init(&b, 100);
    assert_null(b.data);
    assert_int_equal(rr__buf_size(&b), 0);
    rr__buf_fini(&b);
    rr__buf_fini(NULL); // a no-op
}

static void
test_buf_append_consume_keeps_order(void **state)
{
    (void) state;
    rr_buf b;
    uint8_t chunk[100];

    rr__buf_init(&b, 1 << 20);
    // Appending 100 and consuming 60 each round forces the lazy compaction
    // many times; the bytes must still come out in the order they went in.
    uint8_t next_in = 0, next_out = 0;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = next_in++;
        assert_int_equal(rr__buf_append(&b, chunk, sizeof(chunk)), RR_OK);
        for (size_t i = 0; i < 60; i++)
            assert_int_equal(rr__buf_data(&b)[i], (uint8_t) (next_out + i));
        next_out = (uint8_t) (next_out + 60);
        rr__buf_consume(&b, 60);
    }
    assert_int_equal(rr__buf_size(&b), 200 * 40);
    rr__buf_consume(&b, rr__buf_size(&b));
    assert_int_equal(rr__buf_size(&b), 0);
    assert_int_equal(b.head, 0); // emptied buffers restart at the front
    rr__buf_fini(&b);
}

static void
test_buf_cap_is_exact(void **state)
{
    (void) state;
    rr_buf b;
    uint8_t x[10] = {0};

    rr__buf_init(&b, 30);
    assert_int_equal(rr__buf_append(&b, x, 10), RR_OK);
    assert_int_equal(rr__buf_append(&b, x, 10), RR_OK);
    assert_int_equal(rr__buf_append(&b, x, 10), RR_OK); // exactly the cap
    assert_int_equal(rr__buf_append(&b, x, 1), RR_ENOBUFS);
    assert_int_equal(rr__buf_size(&b), 30); // nothing half-appended
    assert_true(b.cap <= 30);
    // Consumed bytes free room under the cap again.
    rr__buf_consume(&b, 5);
    assert_int_equal(rr__buf_append(&b, x, 5), RR_OK);
    assert_int_equal(rr__buf_append(&b, x, 1), RR_ENOBUFS);
    rr__buf_fini(&b);
}

static void
test_buf_over_cap_allocates_nothing(void **state)
{
    (void) state;
    rr_buf b;
    uint8_t *p = NULL;

    rr__buf_init(&b, 4096);
    assert_int_equal(rr__buf_reserve(&b, (size_t) 0xFFFFFFFFu, &p), RR_ENOBUFS);
    assert_int_equal(rr__buf_reserve(&b, SIZE_MAX, &p), RR_ENOBUFS);
    assert_null(b.data);
    assert_null(p);
    rr__buf_fini(&b);
}

static void
test_buf_reserve_commit(void **state)
{
    (void) state;
    rr_buf b;
    uint8_t *p;

    rr__buf_init(&b, 1024);
    assert_int_equal(rr__buf_reserve(&b, 600, &p), RR_OK);
    memset(p, 0xAB, 4);
    rr__buf_commit(&b, 4); // only what was written counts
    assert_int_equal(rr__buf_size(&b), 4);
    assert_int_equal(rr__buf_data(&b)[3], 0xAB);
    rr__buf_fini(&b);
}

static void
test_buf_release_only_when_empty(void **state)
{
    (void) state;
    rr_buf b;

    rr__buf_init(&b, 1024);
    assert_int_equal(rr__buf_append(&b, "abc", 3), RR_OK);
    rr__buf_release(&b);
    assert_non_null(b.data); // still holds bytes: kept
    assert_memory_equal(rr__buf_data(&b), "abc", 3);
    rr__buf_consume(&b, 3);
    rr__buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(rr__buf_append(&b, "d", 1), RR_OK); // usable again
    rr__buf_fini(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_init_allocates_nothing),
        cmocka_unit_test(test_buf_append_consume_keeps_order),
        cmocka_unit_test(test_buf_cap_is_exact),
        cmocka_unit_test(test_buf_over_cap_allocates_nothing),
        cmocka_unit_test(test_buf_reserve_commit),
        cmocka_unit_test(test_buf_release_only_when_empty),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
