// SPDX-License-Identifier: MIT
//
// kv.c -- rawrpc.kv.Kv.  Entries are kept sorted by key, so Get is a
// binary search and List walks a prefix in order, resuming after the page
// token (the last key of the previous page).

#include "kv.h"

#include <stdlib.h>
#include <string.h>

#include "kv/kv.rr.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
#define SLEEP_MAX_MS 60000

typedef struct kv_entry {
    char *key;
    uint8_t *value;
    size_t len;
} kv_entry;

typedef struct kv_sleeper kv_sleeper;

struct rr_kv {
    struct ev_loop *loop;
    kv_entry *entries; // sorted by key
    size_t n, cap;
    kv_sleeper *sleepers;
};

struct kv_sleeper {
    ev_timer timer;
    rr_call *call;
    rr_kv *kv;
    uint32_t ms;
    kv_sleeper *prev, *next;
};

// Index of the first entry whose key is >= key.
static size_t
kv_lower_bound(const rr_kv *kv, const char *key)
{
    size_t lo = 0, hi = kv->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(kv->entries[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static kv_entry *
kv_find(const rr_kv *kv, const char *key)
{
    size_t i = kv_lower_bound(kv, key);

    return i < kv->n && strcmp(kv->entries[i].key, key) == 0 ? &kv->entries[i]
                                                             : NULL;
}

static void
kv_get(rr_call *call, const Rawrpc__Kv__GetRequest *req, void *arg)
{
    const kv_entry *e = kv_find(arg, req->key);
    Rawrpc__Kv__GetReply out = RAWRPC__KV__GET_REPLY__INIT;

    if (e == NULL) {
        rr_call_fail(call, RR_STATUS_NOT_FOUND, "no such key");
        return;
    }
    out.value.data = e->value;
    out.value.len = e->len;
    rr_rawrpc__kv__kv__get__reply(call, &out);
}

static uint8_t *
dup_bytes(const ProtobufCBinaryData *b)
{
    uint8_t *p = malloc(b->len > 0 ? b->len : 1);

    if (p != NULL && b->len > 0)
        memcpy(p, b->data, b->len);
    return p;
}

static void
kv_put(rr_call *call, const Rawrpc__Kv__PutRequest *req, void *arg)
{
    rr_kv *kv = arg;
    Rawrpc__Kv__PutReply out = RAWRPC__KV__PUT_REPLY__INIT;
    uint8_t *value = dup_bytes(&req->value);
    size_t i = kv_lower_bound(kv, req->key);

    if (value == NULL)
        goto oom;
    if (i < kv->n && strcmp(kv->entries[i].key, req->key) == 0) {
        free(kv->entries[i].value);
        kv->entries[i].value = value;
        kv->entries[i].len = req->value.len;
        rr_rawrpc__kv__kv__put__reply(call, &out);
        return;
    }
    if (kv->n == kv->cap) {
        size_t cap = kv->cap ? kv->cap * 2 : 64;
        kv_entry *p = realloc(kv->entries, cap * sizeof(*p));
        if (p == NULL)
            goto oom;
        kv->entries = p;
        kv->cap = cap;
    }
    char *key = strdup(req->key);
    if (key == NULL)
        goto oom;
    memmove(&kv->entries[i + 1], &kv->entries[i],
            (kv->n - i) * sizeof(kv_entry));
    kv->entries[i] = (kv_entry){key, value, req->value.len};
    kv->n++;
    out.created = true;
    rr_rawrpc__kv__kv__put__reply(call, &out);
    return;

oom:
    free(value);
    rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

static void
kv_delete(rr_call *call, const Rawrpc__Kv__DeleteRequest *req, void *arg)
{
    rr_kv *kv = arg;
    Rawrpc__Kv__DeleteReply out = RAWRPC__KV__DELETE_REPLY__INIT;
    kv_entry *e = kv_find(kv, req->key);

    if (e == NULL) {
        rr_call_fail(call, RR_STATUS_NOT_FOUND, "no such key");
        return;
    }
    free(e->key);
    free(e->value);
    size_t i = (size_t) (e - kv->entries);
    memmove(e, e + 1, (kv->n - i - 1) * sizeof(kv_entry));
    kv->n--;
    rr_rawrpc__kv__kv__delete__reply(call, &out);
}

static void
kv_list(rr_call *call, const Rawrpc__Kv__ListRequest *req, void *arg)
{
    rr_kv *kv = arg;
    Rawrpc__Kv__ListReply out = RAWRPC__KV__LIST_REPLY__INIT;
    size_t want = req->page_size == 0 ? LIST_DEFAULT : req->page_size;
    size_t plen = strlen(req->prefix);

    if (want > LIST_MAX)
        want = LIST_MAX;
    size_t i = kv_lower_bound(kv, req->prefix);
    if (req->page_token[0] != '\0') {
        i = kv_lower_bound(kv, req->page_token);
        if (i < kv->n && strcmp(kv->entries[i].key, req->page_token) == 0)
            i++; // the token is the last key already sent
    }
    Rawrpc__Kv__Entry *ents = calloc(want, sizeof(*ents));
    Rawrpc__Kv__Entry **ptrs = calloc(want, sizeof(Rawrpc__Kv__Entry *));
    if (ents == NULL || ptrs == NULL) {
        free(ents);
        free(ptrs);
        rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    size_t n = 0;
    for (; i < kv->n && n < want; i++) {
        if (strncmp(kv->entries[i].key, req->prefix, plen) != 0)
            break; // sorted: past the prefix
        rawrpc__kv__entry__init(&ents[n]);
        ents[n].key = kv->entries[i].key;
        ents[n].value.data = kv->entries[i].value;
        ents[n].value.len = kv->entries[i].len;
        ptrs[n] = &ents[n];
        n++;
    }
    out.n_entries = n;
    out.entries = ptrs;
    if (n == want && i < kv->n &&
        strncmp(kv->entries[i].key, req->prefix, plen) == 0)
        out.next_page_token = ents[n - 1].key;
    rr_rawrpc__kv__kv__list__reply(call, &out);
    free(ents);
    free(ptrs);
}

static void
sleeper_unlink(kv_sleeper *s)
{
    ev_timer_stop(s->kv->loop, &s->timer);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        s->kv->sleepers = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
}

static void
sleeper_done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    kv_sleeper *s = (kv_sleeper *) (void *) w; // timer is the first member
    Rawrpc__Kv__SleepReply out = RAWRPC__KV__SLEEP_REPLY__INIT;

    sleeper_unlink(s);
    out.slept_ms = s->ms;
    rr_rawrpc__kv__kv__sleep__reply(s->call, &out);
    free(s);
}

static void
sleeper_cancel_cb(rr_call *call, void *arg)
{
    kv_sleeper *s = arg;

    sleeper_unlink(s);
    rr_call_fail(call, RR_STATUS_CANCELLED, "sleep cancelled");
    free(s);
}

static void
kv_sleep(rr_call *call, const Rawrpc__Kv__SleepRequest *req, void *arg)
{
    rr_kv *kv = arg;
    kv_sleeper *s = calloc(1, sizeof(*s));

    if (req->ms > SLEEP_MAX_MS) {
        free(s);
        rr_call_fail(call, RR_STATUS_INVALID_ARGUMENT,
                     "sleep is limited to 60000 ms");
        return;
    }
    if (s == NULL) {
        rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->call = call;
    s->kv = kv;
    s->ms = req->ms;
    s->next = kv->sleepers;
    if (s->next != NULL)
        s->next->prev = s;
    kv->sleepers = s;
    ev_timer_init(&s->timer, sleeper_done_cb, req->ms / 1000.0, 0.);
    ev_timer_start(kv->loop, &s->timer);
    rr_call_on_cancel(call, sleeper_cancel_cb, s); // the deadline, too
}

int
rr_kv_new(rr_kv **out, struct ev_loop *loop)
{
    rr_kv *kv = calloc(1, sizeof(*kv));

    if (kv == NULL)
        return RR_ENOMEM;
    kv->loop = loop;
    *out = kv;
    return RR_OK;
}

int
rr_kv_register(rr_server *srv, rr_kv *kv)
{
    static const rr_rawrpc__kv__kv__handlers handlers = {
        .get = kv_get,
        .put = kv_put,
        .delete_ = kv_delete,
        .list = kv_list,
        .sleep = kv_sleep,
    };

    return rr_rawrpc__kv__kv__register(srv, &handlers, kv);
}

void
rr_kv_free(rr_kv *kv)
{
    if (kv == NULL)
        return;
    kv_sleeper *next;
    for (kv_sleeper *s = kv->sleepers; s != NULL; s = next) {
        next = s->next;
        ev_timer_stop(kv->loop, &s->timer);
        rr_call_fail(s->call, RR_STATUS_UNAVAILABLE, "store freed");
        free(s);
    }
    kv->sleepers = NULL;
    for (size_t i = 0; i < kv->n; i++) {
        free(kv->entries[i].key);
        free(kv->entries[i].value);
    }
    free(kv->entries);
    free(kv);
}
