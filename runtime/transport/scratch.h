// SPDX-License-Identifier: MIT
//
// scratch.h -- one read buffer per event loop, shared by every
// connection on it.

#ifndef RR_SCRATCH_H
#define RR_SCRATCH_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

// A read buffer shared by every connection on one loop (servers' and
// channels' alike).  Connections read into it and decode in place,
// keeping only a partial frame of their own: an idle connection holds no
// input buffer, and a thousand channels on a loop hold one buffer, not a
// thousand.  It is reference counted: owners hold one each, and a read
// holds one too, because a handler may free the last owner mid-read.
#define RR_SCRATCH_SIZE ((size_t) 256 * 1024)
typedef struct rr_scratch rr_scratch;
struct rr_scratch {
    struct ev_loop *loop;
    atomic_uint refs;
    bool busy; // a connection is decoding from it
    rr_scratch *next;
    uint8_t data[];
};

// rr__scratch_get returns loop's buffer with a reference added,
// making it if need be; NULL when out of memory.  rr__scratch_unref
// drops a reference (NULL is ignored).  Both are thread-safe.
rr_scratch *rr__scratch_get(struct ev_loop *loop);
void rr__scratch_unref(rr_scratch *s);

#endif // RR_SCRATCH_H
