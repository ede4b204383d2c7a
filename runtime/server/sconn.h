// SPDX-License-Identifier: MIT
//
// sconn.h -- one client connection of a server: its REQUESTs become
// calls, their completions become RESPONSEs, and GOAWAY, half-close and
// shutdown end it gracefully (PROTOCOL.md sections 6 and 9).

#ifndef RR_SCONN_H
#define RR_SCONN_H

#include <stdbool.h>
#include <stdint.h>

#include "rawrpc/rawrpc.h"
#include "server/call.h"
#include "transport/conn.h"
#include "util/idmap.h"

struct rr_sconn {
    rr_conn c;
    rr_server *srv;
    rr__core *core;
    const rr__methods *methods; // the core's
    rr__method_memo *memo;      // the core's: this loop's method found last
    rr_sconn *prev, *next;      // the server's list, while open
    rr_sconn *walk_next;        // rr__server_each_conn's snapshot
    rr_idmap calls;   // call ID -> rr_call, until its RESPONSE is sent
    uint32_t last_id; // greatest call ID received
    bool goaway_sent;
    bool peer_done; // the client's GOAWAY or EOF: no more REQUESTs
};

// rr__sconn_open makes the accepted socket fd, from peer, a connection of
// srv on core, linked into srv's list, and starts it (which may close it
// at once).  Returns false, fd closed, when out of memory.
bool rr__sconn_open(rr_server *srv, rr__core *core, int fd, const char *peer,
                    const rr_conn_cfg *cfg);

rr_server *rr__sconn_server(const rr_sconn *sc);

// rr__sconn_respond sends a RESPONSE on sc.  A reply too large for the
// client becomes RESOURCE_EXHAUSTED; a full output buffer closes the
// connection.
void rr__sconn_respond(rr_sconn *sc, uint32_t id, rr_status status,
                       const char *msg, const ProtobufCMessage *reply,
                       const uint8_t *raw, size_t raw_len);

// rr__sconn_forget: call id is answered.  Returns true when that was the
// last call of a connection that takes no more (then the caller lets go
// of sc and calls rr__sconn_finish).
static inline bool
rr__sconn_forget(rr_sconn *sc, uint32_t id)
{
    rr__idmap_del(&sc->calls, id);
    return (sc->goaway_sent || sc->peer_done) && sc->calls.count == 0;
}
void rr__sconn_finish(rr_sconn *sc);

// rr__sconn_goaway begins a shutdown on sc: GOAWAY NO_ERROR naming the
// last call it will answer; a connection still in its handshake closes.
void rr__sconn_goaway(rr_sconn *sc);

// rr__sconn_grace_over: the shutdown's grace period is over; what still
// runs is answered UNAVAILABLE, then the connection finishes.
void rr__sconn_grace_over(rr_sconn *sc);

#endif // RR_SCONN_H
