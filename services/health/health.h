// SPDX-License-Identifier: MIT
//
// health.h -- the health service (rawrpc.health.v1.Health, modelled on
// grpc.health.v1): a table of service name -> status that the server
// flips and clients Check.  "" is the whole server, SERVING from the start.

#ifndef RR_SERVICE_HEALTH_H
#define RR_SERVICE_HEALTH_H

#include <rawrpc/rawrpc.h>

typedef enum rr_health_status {
    RR_HEALTH_UNKNOWN = 0,
    RR_HEALTH_SERVING = 1,
    RR_HEALTH_NOT_SERVING = 2,
} rr_health_status;

typedef struct rr_health rr_health;

int rr_health_new(rr_health **out);
// rr_health_free frees the table; the server it serves must be freed
// first.  NULL is a no-op.
void rr_health_free(rr_health *h);
// rr_health_set records service's status ("" for the whole server).
int rr_health_set(rr_health *h, const char *service, rr_health_status st);
// rr_health_register serves Check on srv from h (one call).
int rr_health_register(rr_server *srv, rr_health *h);

#endif // RR_SERVICE_HEALTH_H
