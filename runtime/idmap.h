// SPDX-License-Identifier: MIT
//
// idmap.h -- call ID -> pointer, for one connection (after nng's idhash).
//
// Open addressing with linear probing and backward-shift deletion, so
// there are no tombstones and lookups stay short however many calls come
// and go.  Key 0 is never a call ID, so it marks an empty slot.

#ifndef RR_IDMAP_H
#define RR_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct rr_idmap_slot {
    uint32_t key;
    void *val;
} rr_idmap_slot;

typedef struct rr_idmap {
    rr_idmap_slot *slots; // NULL until the first insert
    size_t cap;           // a power of two
    size_t count;
    unsigned shift; // 64 - log2(cap): the hash's top bits pick the slot
} rr_idmap;

void rr__idmap_init(rr_idmap *m);
void rr__idmap_fini(rr_idmap *m);

// rr__idmap_put inserts key (not 0, not present).  RR_OK or RR_ENOMEM.
int rr__idmap_put(rr_idmap *m, uint32_t key, void *val);

// rr__idmap_get returns the value of key, or NULL.
void *rr__idmap_get(const rr_idmap *m, uint32_t key);

// rr__idmap_del removes key and returns its value, or NULL if absent.
void *rr__idmap_del(rr_idmap *m, uint32_t key);

// rr__idmap_any returns some value of the map, or NULL when it is empty:
// for draining the map one entry at a time.
void *rr__idmap_any(const rr_idmap *m, uint32_t *key);

#endif // RR_IDMAP_H
