// SPDX-License-Identifier: MIT
//
// arena.h -- a bump allocator behind a ProtobufCAllocator, one per call.
//
// A request and its metadata are unpacked into the call's arena and all
// of it is released at once when the call ends.  The first block is inside
// the arena itself, so a small request costs no malloc at all; larger ones
// take extra blocks.  A reset keeps one extra block (up to
// RR_ARENA_KEEP bytes) for the next call, so steady traffic of larger
// messages allocates nothing either; rr__arena_fini frees everything.

#ifndef RR_ARENA_H
#define RR_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#define RR_ARENA_INLINE 1024
#define RR_ARENA_KEEP   ((size_t) 64 * 1024)

typedef struct rr_arena_block rr_arena_block;

typedef struct rr_arena {
    ProtobufCAllocator alloc; // hand &arena->alloc to protobuf-c
    unsigned char *cur;       // next free byte in the current block
    size_t left;              // bytes left there
    rr_arena_block *blocks;   // extra blocks, newest first
    rr_arena_block *spare;    // one kept by the last reset, or NULL
    bool failed;              // an allocation failed since init or reset
    _Alignas(16) unsigned char first[RR_ARENA_INLINE];
} rr_arena;

void rr__arena_init(rr_arena *a);

// The arena's allocation function, for rr__arena_of.
void *rr__arena_alloc(void *data, size_t size);

// rr__arena_of returns the arena behind a, or NULL when a is another
// allocator (or NULL): protobuf-c answers NULL both for bytes that do not
// parse and for memory it could not get, and an arena's failed flag tells
// which without a watching allocator in between.
static inline rr_arena *
rr__arena_of(const ProtobufCAllocator *a)
{
    return a != NULL && a->alloc == rr__arena_alloc
               ? (rr_arena *) a->allocator_data
               : NULL;
}

// rr__arena_reset releases everything allocated, keeping the inline block
// and one extra block of at most RR_ARENA_KEEP bytes.  Inline for the
// common case of a call that fit the inline block.
void rr__arena_reset_blocks(rr_arena *a);

static inline void
rr__arena_reset(rr_arena *a)
{
    if (a->blocks != NULL)
        rr__arena_reset_blocks(a);
    a->cur = a->first;
    a->left = sizeof(a->first);
    a->failed = false;
}

// rr__arena_fini frees every block; the arena may be initialised again.
void rr__arena_fini(rr_arena *a);

#endif // RR_ARENA_H
