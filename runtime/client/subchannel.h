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

// rr__sub_can_take: ready, and under the server's concurrency limit.
// rr__sub_has_room: its output holds less than the high-water mark.
// rr__sub_drained: its output is down to the low-water mark, or gone.
bool rr__sub_can_take(const rr__subchannel *sub);
bool rr__sub_has_room(const rr__subchannel *sub);
bool rr__sub_drained(const rr__subchannel *sub);

// rr__sub_send frames pc onto the ready connection, or fails it (from
// the loop) when it cannot be sent.  Runs no user code.
void rr__sub_send(rr__subchannel *sub, ch_call *pc);

// rr__sub_forget takes a sent call off the wire: its ID stays taken by a
// ZOMBIE, and with send_cancel the server is told.
void rr__sub_forget(ch_call *pc, bool send_cancel);

// rr__sub_set_next_id: see rr__channel_set_next_id.
int rr__sub_set_next_id(rr__subchannel *sub, uint32_t id);

#endif // RR_SUBCHANNEL_H
