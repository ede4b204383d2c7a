// SPDX-License-Identifier: MIT
//
// subchannel.h -- one address of a channel and its connections: the
// current one (connecting or ready) and the retired ones finishing their
// calls; connecting, reconnecting after an exponential backoff with
// jitter (gRPC's connection-backoff defaults), framing calls onto the
// wire, and what the server says back (RESPONSE, GOAWAY, the close).
//
// Call IDs are never reused on a connection (PROTOCOL.md section 6): a
// call given up on leaves a ZOMBIE in the ID map until its late RESPONSE
// arrives.  A connection whose IDs are used up takes no more calls and
// closes once its last one is done.

#ifndef RR_SUBCHANNEL_H
#define RR_SUBCHANNEL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/addr.h"
#include "transport/conn.h"
#include "util/idmap.h"

typedef struct rr_channel rr_channel;
typedef struct ch_call ch_call;
typedef struct ch_conn ch_conn;

enum rr__sub_state {
    RR_SUB_IDLE,
    RR_SUB_CONNECTING,
    RR_SUB_READY,
    RR_SUB_BACKOFF
};

typedef struct rr__subchannel {
    rr_channel *ch;
    rr_addr addr;
    enum rr__sub_state state;
    ch_conn *conn; // connecting or ready
    ch_conn *old;  // retired, finishing their calls
    ev_timer backoff;
    double backoff_cur;
    uint64_t rng;
    char last_error[160]; // why the last connection failed or closed
} rr__subchannel;

// rr__sub_init makes sub, idle, for ch's connections to addr.
void rr__sub_init(rr__subchannel *sub, rr_channel *ch, const rr_addr *addr);

// rr__sub_close closes every connection at once and stops reconnecting
// (their calls must be settled already).
void rr__sub_close(rr__subchannel *sub);

// rr__sub_connect starts a connection (from RR_SUB_IDLE).
void rr__sub_connect(rr__subchannel *sub);

// rr__sub_drained: its output is down to the low-water mark, or gone.
bool rr__sub_drained(const rr__subchannel *sub);

// rr__sub_send frames pc onto the ready connection, or fails it (from
// the loop) when it cannot be sent.  Runs no user code.
void rr__sub_send(rr__subchannel *sub, ch_call *pc);

// rr__sub_forget takes a sent call off the wire: its ID stays taken by a
// ZOMBIE, and with send_cancel the server is told.  Inline for the call
// that is not on the wire (answered, or never sent): rr__sub_forget in
// client.h, where a ch_call is complete.
void rr__sub_forget_sent(ch_call *pc, bool send_cancel);

// rr__sub_set_next_id: see rr__channel_set_next_id.
int rr__sub_set_next_id(rr__subchannel *sub, uint32_t id);

// ------------------------------------------- inline: once per call

// Calls wait in the channel's queue while the connection's output holds
// this much (the server's default high-water mark) and go again once it
// has drained to RR__SUB_OUT_LOW.  One frame always goes when under
// RR__SUB_OUT_HIGH: the output's cap leaves room for the largest the server
// takes.
#define RR__SUB_OUT_HIGH ((size_t) 4 * 1024 * 1024)
#define RR__SUB_OUT_LOW  ((size_t) 1024 * 1024)
struct ch_conn {
    rr_conn c;
    rr__subchannel *sub;
    ch_conn *next_old; // on the subchannel's list of draining connections
    rr_idmap calls;    // call ID -> ch_call, or ZOMBIE
    uint64_t next_id;  // 2^32: every ID used, the connection is retired
    bool opened;       // the handshake completed
    bool retired;      // GOAWAY received, or IDs exhausted: no new calls
    bool goaway_sent;  // cc_retire ran: closing
};

// Whether cc (the subchannel's connection, or NULL) takes another call:
// not retired, and under the server's concurrency limit.
static inline bool
rr__cc_can_take(const ch_conn *cc)
{
    return cc != NULL && !cc->retired &&
           cc->calls.count < cc->c.peer.max_concurrent_calls;
}

// Whether cc's output has room for another request (RR__SUB_OUT_HIGH).
static inline bool
rr__cc_has_room(const ch_conn *cc)
{
    return rr__buf_size(&cc->c.out) < RR__SUB_OUT_HIGH;
}

// rr__sub_can_take: ready, and under the server's concurrency limit.
// rr__sub_has_room: its output holds less than the high-water mark.
static inline bool
rr__sub_can_take(const rr__subchannel *sub)
{
    return sub->state == RR_SUB_READY && rr__cc_can_take(sub->conn);
}

static inline bool
rr__sub_has_room(const rr__subchannel *sub)
{
    return rr__cc_has_room(sub->conn);
}

#endif // RR_SUBCHANNEL_H
