// SPDX-License-Identifier: MIT
//
// opts.h -- option structs that grow without breaking librawrpc.so.0.
//
// Every public options struct starts with struct_size: the size of the
// struct as the program was compiled (rr_X_opts_init sets it), or 0 for
// the first layout, so a zeroed rr_call_opts still means "defaults".
// The library takes that many bytes over its own defaults: a program
// built against an older header, which knows fewer fields, gets the
// defaults for the fields added since (zlib's sizeof(z_stream) check at
// inflateInit_, turned into a copy).  A program built against a newer
// header than the library is refused, since the library cannot honour
// fields it does not know.

#ifndef RR_OPTS_H
#define RR_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

// The first layout's size: up to the end of its last field, so the
// number does not depend on padding that later fields may fill.
#define RR__OPTS_SIZE_UPTO(type, last)                                         \
    (offsetof(type, last) + sizeof(((type *) 0)->last))

// rr__opts_take copies the caller's options (src, whose struct_size says
// how many bytes it has; 0: first_size) over dst, which holds the
// library's defaults in lib_size bytes, and sets dst's struct_size to
// lib_size.  Returns false, copying nothing, for a size below the first
// layout or above the library's.
static inline bool
rr__opts_take(void *dst, size_t lib_size, const void *src, size_t first_size)
{
    size_t n;

    memcpy(&n, src, sizeof(n)); // struct_size leads every options struct
    if (n == 0)
        n = first_size;
    if (n < first_size || n > lib_size)
        return false;
    memcpy(dst, src, n);
    memcpy(dst, &lib_size, sizeof(lib_size));
    return true;
}

#endif // RR_OPTS_H
