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
    size_t cap, n;              // cap: 0 or a power of two
    const rr_file_desc **files; // for reflection, each once
    size_t n_files, cap_files;
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
    free(t->files);
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

// ------------------------------------------------------------ reflection

static bool
file_known(const rr__methods *t, const rr_file_desc *file)
{
    for (size_t i = 0; i < t->n_files; i++) {
        if (t->files[i] == file || strcmp(t->files[i]->name, file->name) == 0)
            return true;
    }
    return false;
}

int
rr__methods_add_file(rr__methods *t, const rr_file_desc *file)
{
    if (t->frozen)
        return RR_EINVAL;
    if (file_known(t, file))
        return RR_OK;
    if (t->n_files == t->cap_files) {
        size_t cap = t->cap_files ? t->cap_files * 2 : 8;
        // An array of pointers: the size is a pointer's.
        // NOLINTNEXTLINE(bugprone-sizeof-expression)
        const rr_file_desc **p = realloc(t->files, cap * sizeof(*p));
        if (p == NULL)
            return RR_ENOMEM;
        t->files = p;
        t->cap_files = cap;
    }
    t->files[t->n_files++] = file;
    for (size_t i = 0; file->deps != NULL && file->deps[i] != NULL; i++) {
        int rv = rr__methods_add_file(t, file->deps[i]);
        if (rv != RR_OK)
            return rv;
    }
    return RR_OK;
}

const rr_file_desc *
rr__methods_file_named(const rr__methods *t, const char *name)
{
    for (size_t i = 0; i < t->n_files; i++) {
        if (strcmp(t->files[i]->name, name) == 0)
            return t->files[i];
    }
    return NULL;
}

const rr_file_desc *
rr__methods_file_defining(const rr__methods *t, const char *symbol)
{
    for (size_t i = 0; i < t->n_files; i++) {
        const char *const *s = t->files[i]->symbols;
        for (size_t j = 0; s != NULL && s[j] != NULL; j++) {
            if (strcmp(s[j], symbol) == 0)
                return t->files[i];
        }
    }
    return NULL;
}

void
rr__methods_services(const rr__methods *t,
                     void (*fn)(const char *service, size_t len, void *arg),
                     void *arg)
{
    // Each method's name is "/pkg.Service/Method": a service is reported
    // with the first of its methods in the table.
    for (size_t i = 0; i < t->cap; i++) {
        const rr__method *m = &t->tab[i];
        if (m->name == NULL)
            continue;
        const char *svc = m->name + 1;
        size_t len = (size_t) (strrchr(m->name, '/') - svc);
        bool first = true;
        for (size_t j = 0; j < i && first; j++) {
            const rr__method *o = &t->tab[j];
            first = o->name == NULL || strncmp(o->name + 1, svc, len) != 0 ||
                    o->name[1 + len] != '/';
        }
        if (first)
            fn(svc, len, arg);
    }
}
