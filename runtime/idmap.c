// SPDX-License-Identifier: MIT
//
// idmap.c -- call ID -> pointer; see idmap.h.

#include "idmap.h"

#include <stdlib.h>

#include "rawrpc/rawrpc.h"

#define IDMAP_MIN_CAP 16

void
rr__idmap_init(rr_idmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
    m->shift = 64;
}

void
rr__idmap_fini(rr_idmap *m)
{
    free(m->slots);
    rr__idmap_init(m);
}

// Fibonacci hashing, taking the product's top bits: call IDs are
// consecutive, and the top bits spread a window of them evenly over the
// table.  The low bits, used before, keep consecutive keys on a fixed
// stride; at 64 calls in flight that left runs of 8 slots, and deletes
// were 8 % of the client's instructions per call (docs/PERFORMANCE.md).
static size_t
idmap_home(const rr_idmap *m, uint32_t key)
{
    return (size_t) (((uint64_t) key * 0x9E3779B97F4A7C15ull) >> m->shift);
}

static int
idmap_grow(rr_idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : IDMAP_MIN_CAP;
    rr_idmap_slot *old = m->slots;
    size_t old_cap = m->cap;

    m->slots = calloc(cap, sizeof(*m->slots));
    if (m->slots == NULL) {
        m->slots = old;
        return RR_ENOMEM;
    }
    m->cap = cap;
    m->shift = 64;
    for (size_t c = cap; c > 1; c >>= 1)
        m->shift--;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key == 0)
            continue;
        size_t j = idmap_home(m, old[i].key);
        while (m->slots[j].key != 0)
            j = (j + 1) & (cap - 1);
        m->slots[j] = old[i];
    }
    free(old);
    return RR_OK;
}

int
rr__idmap_put(rr_idmap *m, uint32_t key, void *val)
{
    if ((m->count + 1) * 2 > m->cap) { // keep the load at most one half
        int rv = idmap_grow(m);
        if (rv != RR_OK)
            return rv;
    }
    size_t i = idmap_home(m, key);
    while (m->slots[i].key != 0)
        i = (i + 1) & (m->cap - 1);
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->count++;
    return RR_OK;
}

static size_t
idmap_find(const rr_idmap *m, uint32_t key)
{
    if (m->cap == 0)
        return SIZE_MAX;
    for (size_t i = idmap_home(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key)
            return i;
        if (m->slots[i].key == 0)
            return SIZE_MAX;
    }
}

void *
rr__idmap_get(const rr_idmap *m, uint32_t key)
{
    size_t i = idmap_find(m, key);

    return i == SIZE_MAX ? NULL : m->slots[i].val;
}

void *
rr__idmap_del(rr_idmap *m, uint32_t key)
{
    size_t i = idmap_find(m, key);
    if (i == SIZE_MAX)
        return NULL;

    void *val = m->slots[i].val;
    size_t mask = m->cap - 1;
    // Backward-shift: pull later entries of the run into the hole when
    // their home is not between the hole and where they sit.
    for (size_t j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = idmap_home(m, m->slots[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].val = NULL;
    m->count--;
    return val;
}

void *
rr__idmap_any(const rr_idmap *m, uint32_t *key)
{
    for (size_t i = 0; m->count > 0 && i < m->cap; i++) {
        if (m->slots[i].key != 0) {
            if (key != NULL)
                *key = m->slots[i].key;
            return m->slots[i].val;
        }
    }
    return NULL;
}
