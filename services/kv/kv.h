// SPDX-License-Identifier: MIT
//
// kv.h -- the key-value service (rawrpc.kv.Kv).

#ifndef RR_SERVICE_KV_H
#define RR_SERVICE_KV_H

#include <rawrpc/rawrpc.h>

typedef struct rr_kv rr_kv;

// rr_kv_new makes an empty store whose Sleep timers run on loop.
int rr_kv_new(rr_kv **out, struct ev_loop *loop);
// rr_kv_register serves rawrpc.kv.Kv on srv from kv.
int rr_kv_register(rr_server *srv, rr_kv *kv);
// rr_kv_free completes sleeping calls with UNAVAILABLE and frees the
// store.  Free the server first.  NULL is a no-op.
void rr_kv_free(rr_kv *kv);

#endif // RR_SERVICE_KV_H
