// SPDX-License-Identifier: MIT
//
// arena.c -- per-call bump allocator; see arena.h.

#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>

#define ARENA_ALIGN 16
#define ARENA_BLOCK 4096

struct rr_arena_block {
    rr_arena_block *next;
    size_t size; // bytes at data
    _Alignas(16) unsigned char data[];
};

void *
rr__arena_alloc(void *data, size_t size)
{
    rr_arena *a = data;

    size = (size + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
    if (size > a->left) {
        size_t bsize = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        rr_arena_block *b;
        if (a->spare != NULL && a->spare->size >= size) {
            b = a->spare; // the block a reset kept
            bsize = b->size;
            a->spare = NULL;
        } else {
            if (bsize > SIZE_MAX - sizeof(rr_arena_block) ||
                (b = malloc(sizeof(*b) + bsize)) == NULL) {
                a->failed = true;
                return NULL;
            }
            b->size = bsize;
        }
        b->next = a->blocks;
        a->blocks = b;
        a->cur = b->data;
        a->left = bsize;
    }
    void *p = a->cur;
    a->cur += size;
    a->left -= size;
    return p;
}

static void
arena_free(void *data, void *p)
{
    (void) data; // everything goes at the reset
    (void) p;
}

void
rr__arena_init(rr_arena *a)
{
    a->alloc.alloc = rr__arena_alloc;
    a->alloc.free = arena_free;
    a->alloc.allocator_data = a;
    a->blocks = NULL;
    a->spare = NULL;
    a->cur = a->first;
    a->left = sizeof(a->first);
    a->failed = false;
}

void
rr__arena_reset_blocks(rr_arena *a)
{
    while (a->blocks != NULL) {
        rr_arena_block *b = a->blocks;
        a->blocks = b->next;
        // Keep the largest block that is not too large for the next call.
        if (b->size <= RR_ARENA_KEEP &&
            (a->spare == NULL || b->size > a->spare->size)) {
            free(a->spare);
            a->spare = b;
        } else {
            free(b);
        }
    }
}

void
rr__arena_fini(rr_arena *a)
{
    rr__arena_reset(a);
    free(a->spare);
    a->spare = NULL;
}
