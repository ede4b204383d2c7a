// SPDX-License-Identifier: MIT
//
// guard.h -- test input placed flush against an inaccessible page, so a
// parser that reads even one byte past its input crashes at once
// (picohttpparser's test trick).

#ifndef RR_TEST_GUARD_H
#define RR_TEST_GUARD_H

#include <stddef.h>
#include <stdint.h>

typedef struct rr_guard {
    uint8_t *map;  // the whole mapping
    size_t size;   // its size
    uint8_t *data; // where the copy of the input starts
} rr_guard;

// rr_guard_copy copies len bytes so that data[len] is the first byte of a
// PROT_NONE page.  Returns 0, or -1 if len is larger than 64 KiB or mmap
// fails.
int rr_guard_copy(rr_guard *g, const void *src, size_t len);

// rr_guard_free unmaps the copy.
void rr_guard_free(rr_guard *g);

#endif // RR_TEST_GUARD_H
