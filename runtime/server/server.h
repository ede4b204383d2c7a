// SPDX-License-Identifier: MIT
//
// server.h -- the server object, for the server's own modules (call.c,
// sconn.c, loops.c) and tests; users see rawrpc.h.
//
// A server listens and accepts (pausing when out of descriptors), hands
// connections to its loops, and shuts down.  Its struct is freed only
// when none of its callbacks is on the stack (hold/release around each),
// so a handler may free the server; what its calls still need lives on
// in the core (server/call.h).

#ifndef RR_SERVER_H
#define RR_SERVER_H

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rawrpc/rawrpc.h"
#include "server/call.h"
#include "server/loops.h"
#include "server/methods.h"
#include "server/sconn.h"
#include "transport/scratch.h"
#include "util/errmap.h"

#define RR__MAX_LISTENERS 8

typedef struct rr__listener {
    ev_io io;
    ev_timer pause; // accept failed for want of descriptors: retry then
    int fd;         // -1 once closed
    rr_server *srv;
    char path[108]; // unix socket to unlink at free, or ""
    dev_t dev;      // ... if it is still the one we bound
    ino_t ino;
} rr__listener;

struct rr_server {
    struct ev_loop *loop;
    rr_server_opts opts;
    rr__methods *methods; // shared with the extra loops, frozen at listen
    rr__core *core;       // this loop's calls
    rr__listener listeners[RR__MAX_LISTENERS];
    size_t n_listeners;
    uint16_t port;
    rr_sconn *conns; // doubly linked
    uint32_t n_conns;
    rr__loops *loops;    // opts.loops > 1: the extra loops, or NULL
    unsigned next_loop;  // where the next connection goes
    bool loop_inited;    // opts.loop_init ran for loop 0
    rr_scratch *scratch; // the loop's shared read buffer
    int spare_fd;        // shed connections with it on EMFILE
    char last_error[RR__LAST_ERROR_MAX]; // the latest listen's failure
    ev_tstamp emfile_logged;
    // shutdown
    bool shutting;
    ev_timer grace, linger;
    rr_shutdown_cb shutdown_cb;
    void *shutdown_arg;
    int busy; // callbacks of the server on the stack
    bool freed;
};

void rr__server_destroy(rr_server *srv);

// Hold the server across anything that may run a user callback.
static inline void
rr__server_hold(rr_server *srv)
{
    srv->busy++;
}

static inline void
rr__server_release(rr_server *srv)
{
    if (--srv->busy == 0 && srv->freed)
        rr__server_destroy(srv);
}

static inline bool
rr__server_freed(const rr_server *srv)
{
    return srv->freed;
}

static inline const rr_server_opts *
rr__server_opts(const rr_server *srv)
{
    return &srv->opts;
}

static inline struct ev_loop *
rr__server_loop(const rr_server *srv)
{
    return srv->loop;
}

// The server's list of open connections (sconn.c keeps it).
void rr__server_link(rr_server *srv, rr_sconn *sc);
void rr__server_unlink(rr_server *srv, rr_sconn *sc);

// rr__server_check_done finishes a shutdown once no connection is left.
void rr__server_check_done(rr_server *srv);

// rr__server_new_child makes an extra loop's server: no listener, opts
// as given (loops 1, no hooks), dispatching from methods.
int rr__server_new_child(rr_server **out, struct ev_loop *loop,
                         const rr_server_opts *opts, rr__methods *methods);

// rr__server_buffered returns the bytes queued for writing on all the
// server's connections: what a peer that stops reading costs us.
size_t rr__server_buffered(const rr_server *srv);

// rr__server_adopt makes the accepted socket fd, from peer sa, one of
// srv's connections on srv's loop (or closes it past the limits).
void rr__server_adopt(rr_server *srv, int fd, const struct sockaddr *sa,
                      socklen_t len);

#endif // RR_SERVER_H
