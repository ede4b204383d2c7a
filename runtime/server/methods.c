// SPDX-License-Identifier: MIT
//
// methods.c -- the method table; see methods.h.  Open addressing on an
// FNV-1a hash of the name, at most half full.

#include "server/methods.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct rr__methods {
    atomic_uint refs;
    bool frozen;
    rr__method *tab;
    size_t cap, n; // cap: 0 or a power of two
};

rr__methods *
rr__methods_new(void)
{
    rr__methods *t = calloc(1, sizeof(*t));

    if (t != NULL)
        atomic_init(&t->refs, 1);
    return t;
}

rr__methods *
rr__methods_ref(rr__methods *t)
{
    atomic_fetch_add(&t->refs, 1);
    return t;
}

void
rr__methods_unref(rr__methods *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->cap; i++)
        free(t->tab[i].name);
    free(t->tab);
    free(t);
}

static uint64_t
name_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603u; // FNV-1a
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char) s[i]) * 1099511628211u;
    return h;
}

static bool
method_is(const rr__method *m, const char *name, size_t len)
{
    return m->name_len == len && memcmp(m->name, name, len) == 0;
}

static const rr__method *
methods_lookup(const rr__methods *t, const char *name, size_t len)
{
    if (t->cap == 0)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = name_hash(name, len) & mask;; i = (i + 1) & mask) {
        const rr__method *m = &t->tab[i];
        if (m->name == NULL)
            return NULL;
        if (method_is(m, name, len))
            return m;
    }
}

const rr__method *
rr__methods_find(const rr__methods *t, rr__method_memo *memo, const char *name,
                 size_t len)
{
    if (memo != NULL && memo->last != NULL && method_is(memo->last, name, len))
        return memo->last;
    const rr__method *m = methods_lookup(t, name, len);
    if (m != NULL && memo != NULL)
        memo->last = m;
    return m;
}

// The empty slot where name goes in a table of cap (a power of two).
static rr__method *
method_slot(rr__method *tab, size_t cap, const char *name, size_t len)
{
    size_t j = name_hash(name, len) & (cap - 1);

    while (tab[j].name != NULL)
        j = (j + 1) & (cap - 1);
    return &tab[j];
}

static int
methods_grow(rr__methods *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    rr__method *tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return RR_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        const rr__method *m = &t->tab[i];
        if (m->name != NULL)
            *method_slot(tab, cap, m->name, m->name_len) = *m;
    }
    free(t->tab);
    t->tab = tab;
    t->cap = cap;
    return RR_OK;
}

int
rr__methods_add(rr__methods *t, const ProtobufCServiceDescriptor *svc,
                unsigned i, const rr__method *how)
{
    const ProtobufCMethodDescriptor *md = &svc->methods[i];
    size_t n = strlen(svc->name) + strlen(md->name) + 3;

    if (t->frozen)
        return RR_EINVAL;
    char *name = malloc(n);
    if (name == NULL)
        return RR_ENOMEM;
    snprintf(name, n, "/%s/%s", svc->name, md->name);
    if (methods_lookup(t, name, n - 1) != NULL) {
        rr__log(RR_LOG_ERROR, "method %s is already registered", name);
        free(name);
        return RR_EINVAL;
    }
    if ((t->n + 1) * 2 > t->cap && methods_grow(t) != RR_OK) {
        free(name);
        return RR_ENOMEM;
    }
    rr__method *slot = method_slot(t->tab, t->cap, name, n - 1);
    *slot = *how;
    slot->name = name;
    slot->name_len = n - 1;
    slot->m = (rr_method){name, md->input, md->output};
    t->n++;
    return RR_OK;
}

void
rr__methods_freeze(rr__methods *t)
{
    t->frozen = true;
}

bool
rr__methods_frozen(const rr__methods *t)
{
    return t->frozen;
}
