// SPDX-License-Identifier: MIT
//
// methods.h -- a server's method table: full name -> handler.
//
// Filled by rr_server_add_service until the first rr_server_listen
// freezes it; from then on it is read-only, so every loop of the server
// (each on its own thread) shares the one table without a lock.  It is
// reference counted, because calls still held after rr_server_free name
// their method.

#ifndef RR_METHODS_H
#define RR_METHODS_H

#include <stdbool.h>
#include <stddef.h>

#include "rawrpc/rawrpc.h"
#include "rawrpc/stub.h"

typedef struct rr__method {
    char *name; // "/pkg.Service/Method"; NULL = empty slot
    size_t name_len;
    rr_method m;
    rr_handler_cb handler; // or:
    rr_stub_handler tramp; // a generated trampoline, with
    rr_stub_fn fn;         // its typed handler; both NULL: UNIMPLEMENTED
    void *arg;
} rr__method;

typedef struct rr__methods rr__methods;

// rr__methods_new makes an empty table with one reference; NULL when out
// of memory.
rr__methods *rr__methods_new(void);
rr__methods *rr__methods_ref(rr__methods *t);
// rr__methods_unref drops a reference, from any thread; NULL is ignored.
void rr__methods_unref(rr__methods *t);

// rr__methods_add registers svc's method i, served as how says (its name
// and m are filled in here).  Returns RR_OK, RR_EINVAL (the name is
// taken, or the table is frozen) or RR_ENOMEM.
int rr__methods_add(rr__methods *t, const ProtobufCServiceDescriptor *svc,
                    unsigned i, const rr__method *how);

// rr__methods_freeze makes the table read-only, for good.
void rr__methods_freeze(rr__methods *t);
bool rr__methods_frozen(const rr__methods *t);

// rr__methods_find returns the method named by the len bytes at name (no
// NUL needed, and a NUL inside never matches), or NULL.
const rr__method *rr__methods_find(const rr__methods *t, const char *name,
                                   size_t len);

#endif // RR_METHODS_H
