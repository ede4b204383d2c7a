// SPDX-License-Identifier: MIT
//
// idmap.c -- call ID -> pointer; see idmap.h.

#include "util/idmap.h"

#include <stdlib.h>

#include "rawrpc/rawrpc.h"

#define RING_MIN  16
#define RING_MAX  ((size_t) 1 << 16) // 1 MiB of slots; past it, overflow
#define TABLE_MIN 16

void
rr__idmap_init(rr_idmap *m)
{
    m->count = 0;
    m->ring = NULL;
    m->ring_cap = 0;
    m->slots = NULL;
    m->cap = 0;
    m->n_slots = 0;
    m->shift = 64;
}

void
rr__idmap_fini(rr_idmap *m)
{
    free(m->ring);
    free(m->slots);
    rr__idmap_init(m);
}

// ------------------------------------------------------------ the ring

// Doubles the ring (or makes the first), keeping it at least twice the
// entries so that a window of consecutive IDs fits without wrapping onto
// itself.  Entries keep their slots relative to the larger size: two keys
// apart in the small ring are apart in the large one.
static int
ring_grow(rr_idmap *m)
{
    size_t cap = m->ring_cap ? m->ring_cap * 2 : RING_MIN;
    rr_idmap_slot *ring = calloc(cap, sizeof(*ring));

    if (ring == NULL)
        return RR_ENOMEM;
    for (size_t i = 0; i < m->ring_cap; i++) {
        if (m->ring[i].key != 0)
            ring[m->ring[i].key & (cap - 1)] = m->ring[i];
    }
    free(m->ring);
    m->ring = ring;
    m->ring_cap = cap;
    return RR_OK;
}

// ------------------------------------------------------ the overflow table

// Fibonacci hashing, taking the product's top bits: the keys here are
// what is left of consecutive windows, and the top bits spread them
// evenly where the low bits would keep them on a fixed stride.
static size_t
table_home(const rr_idmap *m, uint32_t key)
{
    return (size_t) (((uint64_t) key * 0x9E3779B97F4A7C15ull) >> m->shift);
}

static int
table_grow(rr_idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : TABLE_MIN;
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
        size_t j = table_home(m, old[i].key);
        while (m->slots[j].key != 0)
            j = (j + 1) & (cap - 1);
        m->slots[j] = old[i];
    }
    free(old);
    return RR_OK;
}

static int
table_put(rr_idmap *m, uint32_t key, void *val)
{
    if ((m->n_slots + 1) * 2 > m->cap) { // keep the load at most one half
        int rv = table_grow(m);
        if (rv != RR_OK)
            return rv;
    }
    size_t i = table_home(m, key);
    while (m->slots[i].key != 0)
        i = (i + 1) & (m->cap - 1);
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->n_slots++;
    return RR_OK;
}

static size_t
table_find(const rr_idmap *m, uint32_t key)
{
    if (m->n_slots == 0)
        return SIZE_MAX;
    for (size_t i = table_home(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key)
            return i;
        if (m->slots[i].key == 0)
            return SIZE_MAX;
    }
}

static void *
table_del(rr_idmap *m, size_t i)
{
    void *val = m->slots[i].val;
    size_t mask = m->cap - 1;

    // Backward-shift: pull later entries of the run into the hole when
    // their home is not between the hole and where they sit.
    for (size_t j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = table_home(m, m->slots[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].val = NULL;
    m->n_slots--;
    return val;
}

// ------------------------------------------------------------- the map

int
rr__idmap_put_slow(rr_idmap *m, uint32_t key, void *val)
{
    if ((m->count + 1) * 2 > m->ring_cap && m->ring_cap < RING_MAX) {
        int rv = ring_grow(m);
        if (rv != RR_OK)
            return rv;
    }
    rr_idmap_slot *s = rr__idmap_ring_slot(m, key);
    if (s->key == 0) {
        s->key = key;
        s->val = val;
    } else {
        int rv = table_put(m, key, val);
        if (rv != RR_OK)
            return rv;
    }
    m->count++;
    return RR_OK;
}

// The ring missed: key is in the overflow table or nowhere.
void *
rr__idmap_get_slow(const rr_idmap *m, uint32_t key)
{
    size_t i = table_find(m, key);

    return i == SIZE_MAX ? NULL : m->slots[i].val;
}

void *
rr__idmap_del_slow(rr_idmap *m, uint32_t key)
{
    size_t i = table_find(m, key);

    if (i == SIZE_MAX)
        return NULL;
    m->count--;
    return table_del(m, i);
}

void *
rr__idmap_any(const rr_idmap *m, uint32_t *key)
{
    const rr_idmap_slot *parts[2] = {m->ring, m->slots};
    size_t caps[2] = {m->ring_cap, m->cap};

    for (size_t p = 0; m->count > 0 && p < 2; p++) {
        for (size_t i = 0; i < caps[p]; i++) {
            if (parts[p][i].key != 0) {
                if (key != NULL)
                    *key = parts[p][i].key;
                return parts[p][i].val;
            }
        }
    }
    return NULL;
}

size_t
rr__idmap_keys(const rr_idmap *m, uint32_t *out)
{
    size_t n = 0;

    for (size_t i = 0; i < m->ring_cap; i++) {
        if (m->ring[i].key != 0)
            out[n++] = m->ring[i].key;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key != 0)
            out[n++] = m->slots[i].key;
    }
    return n;
}

// Ring slots come first, then the table's.  A ring slot emptied here
// stays empty, so the scan moves on; a table slot may be refilled by the
// backward shift of table_del, so the scan looks at it again.  Every slot
// behind the cursor was emptied by this drain, so the shift never pulls
// an entry from there (the run wrapping round the table's end) past it.
void *
rr__idmap_pop(rr_idmap *m, rr_idmap_cursor *cur, uint32_t *key)
{
    for (int pass = 0; m->count > 0 && pass < 2; pass++) {
        if (pass == 1)
            cur->at = 0; // something was put behind the cursor
        for (; cur->at < m->ring_cap; cur->at++) {
            rr_idmap_slot *s = &m->ring[cur->at];
            cur->probes++;
            if (s->key == 0)
                continue;
            void *val = s->val;
            if (key != NULL)
                *key = s->key;
            s->key = 0;
            s->val = NULL;
            m->count--;
            cur->at++;
            return val;
        }
        while (cur->at - m->ring_cap < m->cap) {
            size_t i = cur->at - m->ring_cap;
            cur->probes++;
            if (m->slots[i].key == 0) {
                cur->at++;
                continue;
            }
            if (key != NULL)
                *key = m->slots[i].key;
            m->count--;
            return table_del(m, i);
        }
    }
    return NULL;
}
