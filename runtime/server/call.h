// SPDX-License-Identifier: MIT
//
// call.h -- the server call (rr_call) and the per-loop core it lives on.
//
// A core is what a server's calls need on one loop: the loop, its
// deferred queue, the method table, the pool of finished calls, and the
// mailbox that brings completions from other threads.  The server owns
// its cores while it lives; rr_server_free orphans them instead of
// freeing them (rr__core_orphan), and an orphaned core goes away with its
// last call.  An orphaned core touches no loop any more (an extra loop's
// is destroyed with the server), so a call completed after the free, on
// any thread, is only freed.
//
// A call's life: rr__call_new when a REQUEST arrives, rr__call_start
// dispatches it, then exactly one completion (rr_call_reply, rr_call_fail
// or their _from_thread forms, claimed atomically in one place), which
// answers the connection if it is still there and frees the call.  A
// cancel (the client's, the deadline's, the connection's end) answers
// the connection at once; the call stays until its handler completes it.

#ifndef RR_SERVER_CALL_H
#define RR_SERVER_CALL_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rawrpc/rawrpc.h"
#include "rawrpc/v1/wire.pb-c.h"
#include "server/child.h"
#include "server/methods.h"
#include "util/arena.h"
#include "util/defer.h"

typedef struct rr_sconn rr_sconn;
typedef struct rr__core rr__core;

struct rr_call {
    rr__core *core;
    rr_sconn *sc; // NULL once the connection is gone
    rr_call *prev, *next;
    uint32_t id;
    const rr__method *m;
    ProtobufCMessage *req;
    Rawrpc__V1__RequestMeta *meta; // only when it carried user metadata
    ev_timer deadline;
    ev_tstamp deadline_at; // loop time; 0 = none
    atomic_bool cancelled;
    bool responded; // its RESPONSE is sent, or can no longer be
    // Claimed by its first completion, from whichever thread: then in
    // the mailbox, in the pool, or being freed.
    atomic_bool completed;
    rr_cancel_cb cancel_cb;
    void *cancel_arg;
    rr__defer_node cancel_later; // rr_call_on_cancel on a cancelled call
    rr__child *children;
    // a completion posted from another thread
    rr_call *posted_next;
    rr_status t_status;
    uint8_t *t_payload;
    size_t t_len;
    char *t_msg;
    const char *peer;   // the connection's name, or peer_copy
    char peer_copy[80]; // once the call has let go of its connection
    rr_arena arena;     // request and metadata live here
};

// rr__core_new makes loop's core, sharing methods (a reference is taken).
// Returns RR_OK and sets *out, or RR_ENOMEM.  Loop thread.
int rr__core_new(rr__core **out, struct ev_loop *loop, rr__methods *methods);

// rr__core_methods is the table the core's calls are dispatched from.
const rr__methods *rr__core_methods(const rr__core *core);

// rr__core_orphan lets go of the core for its server (rr_server_free,
// once no callback of the server is on the stack).  Cancel callbacks
// still waiting for the loop run now; completions posted from threads
// are taken; the core leaves the loop and is freed with its last call,
// or at once.  Every call must have let go of its connection.  Loop
// thread.
void rr__core_orphan(rr__core *core);

// rr__call_new takes a call for the REQUEST id on sc (a pooled one when
// there is one); NULL when out of memory.  rr__call_discard frees one
// that was never started (its REQUEST was answered already).
rr_call *rr__call_new(rr__core *core, rr_sconn *sc, uint32_t id);
void rr__call_discard(rr_call *call);

// rr__call_start arms the call's deadline (deadline_at) and runs its
// handler.
void rr__call_start(rr_call *call);

// rr__call_cancel cancels the call with status: answers its connection
// (unless gone or answered), tells its children, then runs its cancel
// callback (last: that callback may complete and free the call).
void rr__call_cancel(rr_call *call, rr_status status, const char *msg);

// rr__call_detach lets go of the call's connection, which may then be
// freed before the call is.
void rr__call_detach(rr_call *call);

#endif // RR_SERVER_CALL_H
