// SPDX-License-Identifier: MIT
//
// client.h -- the channel's parts, for client/ only: the client call
// (ch_call), the channel (rr_channel) and what a subchannel asks of it.
//
// A channel holds the calls: their queue, pool, tokens, deadlines and
// completion, and the policy of where a call goes.  A subchannel
// (subchannel.h) is one address and its connections; the channel has
// one today, and many endpoints add more without touching the calls.

#ifndef RR_CLIENT_H
#define RR_CLIENT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/subchannel.h"
#include "rawrpc/rawrpc.h"
#include "rawrpc/stub.h"
#include "server/child.h"
#include "transport/scratch.h"
#include "util/arena.h"
#include "util/defer.h"
#include "util/idmap.h"

struct ch_call {
    rr_channel *ch;
    ch_call *prev, *next;   // the channel's live calls
    ch_call *qprev, *qnext; // the send queue (qnext also links the pool)
    bool queued;
    ch_conn *cc; // set while sent and unanswered (subchannel.c)
    uint32_t id;
    uint64_t token;            // 0: none was asked for
    const rr_method *m;        // the caller's, or &raw_m
    rr_method raw_m;           // rr_channel_call_raw's: a name, no descriptors
    const uint8_t *reply_data; // a raw call's reply, during delivery
    size_t reply_len;
    rr_result_cb cb;      // or:
    rr_stub_result tramp; // a generated trampoline with
    rr_stub_fn fn;        // its typed callback
    void *arg;
    ev_timer timer;         // the deadline
    rr__defer_node deliver; // the outcome, delivered from the loop
    ev_tstamp deadline_at;  // 0: none
    ev_tstamp started_at;   // for the debug log line; 0 when it is off
    bool wait_for_ready;
    bool keep_reply;  // rr_channel_call_sync takes the reply
    rr__child child;  // under rr_call_opts.parent
    uint8_t *payload; // the packed request; kept with a pooled call
    size_t payload_len;
    size_t payload_cap;
    rr_metadata *md; // copies, in the same allocation as payload
    size_t n_md;
    // the outcome
    bool done;
    rr_status status;
    char *message;
    ProtobufCMessage *reply; // in an arena, or malloc'd when keep_reply
    rr_arena arena;          // last: large
};

struct rr_channel {
    struct ev_loop *loop;
    rr_channel_opts opts;
    char target[128];
    rr__subchannel sub;  // the one address's connections
    rr_scratch *scratch; // the loop's shared read buffer
    rr__defer *defer;    // the loop's deferred-completion queue
    ev_prepare drain;    // while queued calls wait for the output to drain
    ch_call *live;
    ch_call *pool; // finished calls kept for reuse, through qnext
    size_t n_pool;
    size_t pool_bytes; // payload buffers the pooled calls keep
    ch_call *q_head, *q_tail;
    size_t q_len;
    rr_idmap tokens; // a token's low 32 bits -> its call, while it lives
    uint64_t next_token;
    int busy;
    bool freed;
    // Replies are unpacked here and the arena is reset after each
    // callback: one hot block instead of one per call in flight, whose
    // 64 x 4 KiB showed as cache misses (docs/PERFORMANCE.md).  A callback
    // that runs the loop again leaves the nested replies to their calls'
    // own arenas (replies_busy).
    rr_arena replies;
    bool replies_busy;
};

// In a connection's ID map: a call given up on whose RESPONSE may still
// come (PROTOCOL.md section 6).
extern char rr__ch_zombie;
#define ZOMBIE ((void *) &rr__ch_zombie)

// Hold the channel across anything that may run a user callback; a
// freed channel goes with the last release.
void rr__ch_destroy(rr_channel *ch);

static inline void
rr__ch_hold(rr_channel *ch)
{
    ch->busy++;
}

static inline void
rr__ch_release(rr_channel *ch)
{
    if (--ch->busy == 0 && ch->freed)
        rr__ch_destroy(ch);
}

// rr__ch_pump sends queued calls while the subchannel takes them.  Runs
// no user code.
void rr__ch_pump(rr_channel *ch);

// rr__ch_drain pumps again when calls wait for the output to drain and it
// has (to RR__SUB_OUT_LOW, or the connection is gone).  Runs no user
// code.
void rr__ch_drain(rr_channel *ch);

// rr__ch_requeue puts a call that never ran (its REQUEST crossed a
// GOAWAY) back at the queue's head.
void rr__ch_requeue(rr_channel *ch, ch_call *pc);

// rr__ch_fail_queue fails the queued calls that do not wait for ready,
// from the loop.
void rr__ch_fail_queue(rr_channel *ch, const char *why);

// rr__pc_settle decides the call's outcome once (false when it was
// decided already); rr__pc_deliver runs its callback and frees it;
// rr__pc_finish settles and delivers from the loop, never before the
// function that got here returns.
bool rr__pc_settle(ch_call *pc, rr_status status, const char *msg);
void rr__pc_deliver(ch_call *pc);
void rr__pc_finish(ch_call *pc, rr_status status, const char *msg);

// rr__sub_forget: see rr__sub_forget_sent (subchannel.h).
static inline void
rr__sub_forget(ch_call *pc, bool send_cancel)
{
    if (pc->cc != NULL)
        rr__sub_forget_sent(pc, send_cancel);
}

#endif // RR_CLIENT_H
