// SPDX-License-Identifier: MIT
//
// idmap.h -- call ID -> pointer, for one connection.
//
// Call IDs on a connection only grow, and most calls end soon after they
// start, so the live IDs are mostly one window of consecutive numbers.
// They go in a direct-mapped ring first (slot = ID mod the ring's size):
// no hashing, no probing.  An ID whose ring slot is taken -- an old call
// still running when the window has wrapped around to it -- goes to an
// overflow table instead: open addressing with linear probing and
// backward-shift deletion (after nng's idhash), so it never needs
// tombstones.  Key 0 is never a call ID, so it marks an empty slot.

#ifndef RR_IDMAP_H
#define RR_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "rawrpc/rawrpc.h"

typedef struct rr_idmap_slot {
    uint32_t key;
    void *val;
} rr_idmap_slot;

typedef struct rr_idmap {
    size_t count; // entries, in both parts
    // the ring: NULL until the first insert
    rr_idmap_slot *ring;
    size_t ring_cap; // a power of two
    // the overflow table: NULL until an ID finds its ring slot taken
    rr_idmap_slot *slots;
    size_t cap;     // a power of two
    size_t n_slots; // entries there
    unsigned shift; // 64 - log2(cap): the hash's top bits pick the slot
} rr_idmap;

void rr__idmap_init(rr_idmap *m);
void rr__idmap_fini(rr_idmap *m);

// Where key goes in the ring (which must exist).
static inline rr_idmap_slot *
rr__idmap_ring_slot(const rr_idmap *m, uint32_t key)
{
    return &m->ring[key & (m->ring_cap - 1)];
}

// The ring's part of put, get and del is inline, below: it runs twice per
// call on each side.  These take the rest.
int rr__idmap_put_slow(rr_idmap *m, uint32_t key, void *val);
void *rr__idmap_get_slow(const rr_idmap *m, uint32_t key);
void *rr__idmap_del_slow(rr_idmap *m, uint32_t key);

// rr__idmap_put inserts key (not 0, not present).  RR_OK or RR_ENOMEM.
static inline int
rr__idmap_put(rr_idmap *m, uint32_t key, void *val)
{
    // Room to spare and the key's slot free: nothing else to do.
    if ((m->count + 1) * 2 <= m->ring_cap) {
        rr_idmap_slot *s = rr__idmap_ring_slot(m, key);
        if (s->key == 0) {
            s->key = key;
            s->val = val;
            m->count++;
            return RR_OK;
        }
    }
    return rr__idmap_put_slow(m, key, val);
}

// rr__idmap_get returns the value of key, or NULL.
static inline void *
rr__idmap_get(const rr_idmap *m, uint32_t key)
{
    if (m->ring_cap == 0)
        return NULL;
    const rr_idmap_slot *s = rr__idmap_ring_slot(m, key);
    return s->key == key ? s->val : rr__idmap_get_slow(m, key);
}

// rr__idmap_del removes key and returns its value, or NULL if absent.
static inline void *
rr__idmap_del(rr_idmap *m, uint32_t key)
{
    if (m->ring_cap == 0)
        return NULL;
    rr_idmap_slot *s = rr__idmap_ring_slot(m, key);
    if (s->key != key)
        return rr__idmap_del_slow(m, key);
    void *val = s->val;
    s->key = 0;
    s->val = NULL;
    m->count--;
    return val;
}

// rr__idmap_any returns some value of the map, or NULL when it is empty.
// It scans from the first slot each time: to drain a map, use
// rr__idmap_pop, which is linear in all where this is quadratic.
void *rr__idmap_any(const rr_idmap *m, uint32_t *key);

// Where a drain with rr__idmap_pop has got to.  Start zeroed:
// rr_idmap_cursor cur = {0};
typedef struct rr_idmap_cursor {
    size_t at;     // the next slot to look at: the ring's, then the table's
    size_t probes; // slots looked at so far (tests count them)
} rr_idmap_cursor;

// rr__idmap_pop removes some entry and returns its value (its key in *key
// if key is not NULL), or NULL when the map is empty.  It resumes the scan
// where cur left it, so emptying a map of n entries looks at every slot
// about once: O(n + capacity) in all, not O(n * capacity).  Puts and dels
// between pops are allowed (an entry put behind the cursor is found by a
// second pass from the start), so a drain may run callbacks that complete
// other entries.
void *rr__idmap_pop(rr_idmap *m, rr_idmap_cursor *cur, uint32_t *key);

// rr__idmap_keys writes every key to out, which holds m->count, and
// returns how many it wrote (m->count).
size_t rr__idmap_keys(const rr_idmap *m, uint32_t *out);

#endif // RR_IDMAP_H
