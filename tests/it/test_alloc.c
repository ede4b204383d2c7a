// SPDX-License-Identifier: MIT
//
// test_alloc.c -- steady traffic costs no heap allocation on either side:
// calls, buffers and replies are pooled or come from per-call arenas.
//
// The program is linked with -Wl,--wrap for malloc, calloc and realloc,
// so every allocation rawrpc's own code makes passes through a counter
// here.  (libprotobuf-c and libev are shared libraries and are not
// wrapped; protobuf-c allocates through our arenas on these paths, and
// libev only when its watcher arrays grow.)

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "harness.h"

// The linker's --wrap option dictates these reserved names.
// NOLINTBEGIN(bugprone-reserved-identifier)
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long allocs;

void *
__wrap_malloc(size_t n)
{
    allocs++;
    return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
    allocs++;
    return __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
    allocs++;
    return __real_realloc(p, n);
}
// NOLINTEND(bugprone-reserved-identifier)

static void
run_calls(fixture *fx, int n, int inflight)
{
    outcome o[16];

    for (int i = 0; i < n; i += inflight) {
        for (int j = 0; j < inflight; j++)
            assert_int_equal(fx_call(fx, M_ECHO, "steady", NULL, &o[j]), RR_OK);
        for (int j = 0; j < inflight; j++) {
            fx_wait(fx, &o[j]);
            assert_int_equal(o[j].status, RR_STATUS_OK);
        }
    }
}

static void
test_alloc_steady_state_allocates_nothing(void **state)
{
    (void) state;
    fixture fx;

    assert_int_equal(fx_setup(&fx, 60.0, NULL, NULL), 0);
    for (int inflight = 1; inflight <= 16; inflight *= 4) {
        run_calls(&fx, 256, inflight); // warm-up fills pools and buffers
        long before = allocs;
        run_calls(&fx, 1024, inflight);
        assert_int_equal(allocs - before, 0);
    }
    fx_teardown(&fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_steady_state_allocates_nothing),
    };
    return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
