// SPDX-License-Identifier: MIT
//
// conn.h -- one rawrpc connection on a libev loop, either side.
//
// The connection owns the socket, the two buffers and three watchers; it
// does the preface and SETTINGS handshake, answers PING, keeps the
// heartbeat, skips extension frames and enforces the header rules.  Every
// other frame goes to its owner (server or channel) through ops->on_frame.
//
// Lifetime: the owner allocates the rr_conn (usually inside a larger
// struct) and frees it only from ops->on_free, which runs once the
// connection is closed and none of its callbacks is on the stack (after
// hiredis: an owner may close a connection from inside its own callback).

#ifndef RR_CONN_H
#define RR_CONN_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/addr.h"
#include "codec/buf.h"
#include "codec/frame.h"
#include "codec/preface.h"
#include "transport/io.h"
#include "transport/scratch.h"

typedef struct rr_conn rr_conn;

typedef struct rr_conn_ops {
    // The peer's SETTINGS arrived: the connection is open.
    void (*on_open)(rr_conn *c);
    // The open connection read the peer's EOF: the peer shut its write
    // side but may still read.  The connection stays open for output,
    // stops reading and heartbeating, and the owner finishes it with
    // rr__conn_finish, which then closes once the output is written.
    // NULL: an EOF closes the connection at once.
    void (*on_eof)(rr_conn *c);
    // A REQUEST, RESPONSE, CANCEL or GOAWAY (header rules already
    // checked).  The body is valid only during the call.
    void (*on_frame)(rr_conn *c, const rr_frame *f);
    // The connection closed; err is an rr_err, why a sentence.  Runs once.
    void (*on_close)(rr_conn *c, int err, const char *why);
    // The memory may go now.
    void (*on_free)(rr_conn *c);
    // All queued output was written: an owner that holds frames back
    // until the output drains may queue them now.  NULL: not told.  Not
    // called from the write of a connection that is failing.
    void (*on_written)(rr_conn *c);
} rr_conn_ops;

typedef struct rr_conn_cfg {
    rr_settings local;        // the limits this side advertises
    double handshake_timeout; // connect + preface + SETTINGS, seconds
    double hb_interval;       // idle seconds before PING; 0 = none
    double hb_timeout;        // seconds after a PING before death
    size_t out_high;          // pause reading above; 0 = never
    size_t out_low;           // resume at or below
    bool keepalive;           // SO_KEEPALIVE tuned to the heartbeat
    rr_scratch *scratch;      // the owner's; NULL: read into own buffer
} rr_conn_cfg;

enum rr_conn_state {
    RR_CONN_CONNECTING, // non-blocking connect in progress
    RR_CONN_HANDSHAKE,  // waiting for the peer's preface and SETTINGS
    RR_CONN_OPEN,
    RR_CONN_FINISHING, // graceful: write side shut, reading until EOF
    RR_CONN_CLOSED,
};

struct rr_conn {
    struct ev_loop *loop;
    const rr_conn_ops *ops;
    rr_conn_cfg cfg;
    int fd;    // the socket, which the watchers wait on
    rr_io *io; // the byte stream over it: &plain, or a TLS stream
    rr_io plain;
    int hup_fd; // after a half-close: an epoll set that wakes on a reset
    enum rr_conn_state state;
    bool is_client;
    bool preface_rx;      // the peer's preface has been read
    bool paused;          // reading stopped by the high-water mark
    bool finish_wanted;   // shut the write side once output drains
    bool peer_eof;        // the peer half-closed (see ops->on_eof)
    bool tx_stuck;        // after the EOF: output waited a whole tick
    int busy;             // our callbacks on the stack
    rr_settings peer;     // the peer's limits (initial values until known)
    uint32_t goaway_last; // last_call_id for a GOAWAY this side sends
    ev_io rio, wio;
    ev_timer timer;        // connect/handshake, then heartbeat
    ev_tstamp last_rx;     // when bytes last arrived, even a partial frame
    ev_tstamp ping_at;     // when the outstanding PING went, 0 if none
    ev_tstamp pings_since; // start of the current PING-flood window
    unsigned pings;        // PINGs received in that window
    uint64_t tx_bytes;     // written so far
    uint64_t tx_seen;      // tx_bytes at the last tick after the EOF
    rr_buf in, out;
    // On the loop's flush list (scratch.h) while output waits for the
    // end of the loop's round of callbacks: the link, and where this
    // entry's address is kept (NULL: not listed).
    rr_conn *flush_next, **flush_pprev;
    char peer_name[80]; // "127.0.0.1:40112", for logs and calls
};

// rr__conn_start takes over fd (a connected or connecting socket, opened
// non-blocking and close-on-exec), sends the preface and SETTINGS (or
// queues them while connecting) and starts the watchers.  connecting:
// fd's non-blocking connect is in progress.  A write that fails closes
// the connection before this returns, as running out of memory does.
void rr__conn_start(rr_conn *c, struct ev_loop *loop, int fd, bool is_client,
                    bool connecting, const rr_conn_cfg *cfg,
                    const rr_conn_ops *ops, const char *peer_name);

// rr__conn_queued tells the connection new frames are in c->out: they go
// out in one write per connection once the loop's callbacks under way are
// done (the loop's flush list, scratch.h), or when the socket takes them
// if it was full.  Past the high-water mark it stops reading the peer.
// Inline for the frames after the first, which find everything set.
void rr__conn_queued_slow(rr_conn *c);

static inline void
rr__conn_queued(rr_conn *c)
{
    if (c->state == RR_CONN_OPEN &&
        (c->flush_pprev != NULL || ev_is_active(&c->wio)) &&
        (c->cfg.out_high == 0 || rr__buf_size(&c->out) < c->cfg.out_high))
        return;
    rr__conn_queued_slow(c);
}

// rr__conn_fail sends GOAWAY with code and the formatted message (best
// effort), logs it, and closes with err.
__attribute__((format(printf, 4, 5))) void
rr__conn_fail(rr_conn *c, uint32_t code, int err, const char *fmt, ...);

// rr__conn_close closes at once, without GOAWAY.  Idempotent.  May run
// ops->on_free before returning when no callback of c is on the stack.
void rr__conn_close(rr_conn *c, int err, const char *why);

// rr__conn_finish ends the connection gracefully: once the output is
// written, the write side is shut down and the connection reads until the
// peer's EOF, so the last frames are not lost to a reset.
void rr__conn_finish(rr_conn *c);

// rr__conn_hold and rr__conn_release keep c's memory while an owner walks
// its connections and may close one: a release after the close frees it.
void rr__conn_hold(rr_conn *c);
void rr__conn_release(rr_conn *c);

#endif // RR_CONN_H
