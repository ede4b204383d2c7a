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

#include "codec/meta.h"
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

// rr__methods_add_file records file and its deps for reflection (each
// once).  Returns RR_OK, RR_EINVAL (frozen) or RR_ENOMEM.
int rr__methods_add_file(rr__methods *t, const rr_file_desc *file);

// rr__methods_file_named and rr__methods_file_defining find a recorded
// file by its name, or by a symbol it defines; NULL when none does.
const rr_file_desc *rr__methods_file_named(const rr__methods *t,
                                           const char *name);
const rr_file_desc *rr__methods_file_defining(const rr__methods *t,
                                              const char *symbol);

// rr__methods_services calls fn(service, arg) once for each service with
// a registered method ("pkg.Service"), in no particular order.
void rr__methods_services(const rr__methods *t,
                          void (*fn)(const char *service, size_t len,
                                     void *arg),
                          void *arg);

// rr__methods_freeze makes the table read-only, for good.
void rr__methods_freeze(rr__methods *t);
bool rr__methods_frozen(const rr__methods *t);

// The method one loop found last.  Clients tend to call one method many
// times in a row, so it is tried first: per loop, since the table itself
// is shared and read-only.
typedef struct rr__method_memo {
    const rr__method *last;
} rr__method_memo;

// rr__methods_find returns the method named by the len bytes at name (no
// NUL needed, and a NUL inside never matches), or NULL; memo's method is
// tried first, and memo remembers what was found.
const rr__method *rr__methods_find(const rr__methods *t, rr__method_memo *memo,
                                   const char *name, size_t len);

// rr__methods_recall is the shortcut before any decoding: memo's method
// when a REQUEST's metadata (len bytes at meta) is exactly its name and
// at most a timeout (then *timeout_us), as rr__request_head_decode would
// read it; otherwise NULL, and the caller decodes.  Comparing the encoded
// name saves the decoder's scan and the hash (about 200 instructions of
// a call's 1 200, by callgrind; docs/PERFORMANCE.md).
static inline const rr__method *
rr__methods_recall(const rr__method_memo *memo, const uint8_t *meta, size_t len,
                   uint64_t *timeout_us)
{
    const rr__method *m = memo->last;

    return m != NULL && rr__request_head_match(meta, len, m->name, m->name_len,
                                               timeout_us)
               ? m
               : NULL;
}

#endif // RR_METHODS_H
