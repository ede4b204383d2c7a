// SPDX-License-Identifier: MIT
//
// health.c -- rawrpc.health.v1.Health; see health.h.  A handful of
// services at most, so a plain array.

#include "health.h"

#include <stdlib.h>
#include <string.h>

#include "health/health.rr.h"

typedef struct health_entry {
    char *service;
    rr_health_status status;
} health_entry;

struct rr_health {
    health_entry *entries;
    size_t n, cap;
};

static health_entry *
health_find(const rr_health *h, const char *service)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->entries[i].service, service) == 0)
            return &h->entries[i];
    }
    return NULL;
}

int
rr_health_set(rr_health *h, const char *service, rr_health_status st)
{
    health_entry *e = health_find(h, service);

    if (e != NULL) {
        e->status = st;
        return RR_OK;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        health_entry *p = realloc(h->entries, cap * sizeof(*p));
        if (p == NULL)
            return RR_ENOMEM;
        h->entries = p;
        h->cap = cap;
    }
    char *name = strdup(service);
    if (name == NULL)
        return RR_ENOMEM;
    h->entries[h->n].service = name;
    h->entries[h->n].status = st;
    h->n++;
    return RR_OK;
}

int
rr_health_new(rr_health **out)
{
    rr_health *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return RR_ENOMEM;
    if (rr_health_set(h, "", RR_HEALTH_SERVING) != RR_OK) {
        free(h);
        return RR_ENOMEM;
    }
    *out = h;
    return RR_OK;
}

void
rr_health_free(rr_health *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->entries[i].service);
    free(h->entries);
    free(h);
}

static void
health_check(rr_call *call, const Rawrpc__Health__V1__HealthCheckRequest *req,
             void *arg)
{
    const health_entry *e = health_find(arg, req->service);
    Rawrpc__Health__V1__HealthCheckResponse out =
        RAWRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    if (e == NULL) {
        rr_call_fail(call, RR_STATUS_NOT_FOUND, "unknown service");
        return;
    }
    out.status =
        (Rawrpc__Health__V1__HealthCheckResponse__ServingStatus) e->status;
    rr_rawrpc__health__v1__health__check__reply(call, &out);
}

int
rr_health_register(rr_server *srv, rr_health *h)
{
    static const rr_rawrpc__health__v1__health__handlers handlers = {
        .check = health_check};

    return rr_rawrpc__health__v1__health__register(srv, &handlers, h);
}
