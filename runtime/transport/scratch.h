// SPDX-License-Identifier: MIT
//
// scratch.h -- one read buffer and one flush list per event loop,
// shared by every connection on it.

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
//
// It also keeps the loop's flush list (conn.c): the connections with
// output queued, each written once after the callbacks the loop is
// running now, so a wake-up costs no write-watcher start and stop, and
// output queued from anywhere (a handler, a worker's completion, a
// timer, a user's watcher, a nested loop) leaves in one write per
// connection.  Its watcher is never started: the first connection put on
// the list feeds it (ev_feed_event) at the lowest priority, which libev
// runs within the round of callbacks under way, after the others, at any
// nesting depth, or at the start of the next ev_run.
#define RR_SCRATCH_SIZE ((size_t) 256 * 1024)
struct rr_conn;
typedef struct rr_scratch rr_scratch;
struct rr_scratch {
    struct ev_loop *loop;
    atomic_uint refs;
    bool busy; // a connection is decoding from it
    rr_scratch *next;
    ev_prepare flush;           // never started, only fed (conn.c)
    struct rr_conn *flush_head; // loop thread only
    uint8_t data[];
};

// rr__scratch_get returns loop's buffer with a reference added,
// making it if need be; NULL when out of memory.  rr__scratch_unref
// drops a reference (NULL is ignored).  Both are thread-safe.
rr_scratch *rr__scratch_get(struct ev_loop *loop);
void rr__scratch_unref(rr_scratch *s);

#endif // RR_SCRATCH_H
