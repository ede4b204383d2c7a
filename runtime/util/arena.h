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
    _Alignas(16) unsigned char first[RR_ARENA_INLINE];
} rr_arena;

void rr__arena_init(rr_arena *a);

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
}

// rr__arena_fini frees every block; the arena may be initialised again.
void rr__arena_fini(rr_arena *a);

#endif // RR_ARENA_H
