// SPDX-License-Identifier: MIT
//
// loops.h -- a server's extra event loops (rr_server_opts.loops > 1).
//
// Each extra loop runs on a thread of its own (util/loopthread.h) with a
// server of its own (a "child": same options, the same frozen method
// table, no listener).  The parent server accepts every connection on
// the caller's loop and hands them out round-robin; a connection and all
// its calls then stay on one loop for life.

#ifndef RR_LOOPS_H
#define RR_LOOPS_H

#include <ev.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "rawrpc/rawrpc.h"
#include "server/methods.h"

typedef struct rr__loops rr__loops;

// rr__loops_new makes n loops with their child servers (not yet running)
// for the server owner, with its options, dispatching from methods;
// done(arg) runs on parent_loop once every child finished a shutdown.
// Loop i's thread runs opts->loop_init(owner, loop, i + 1, opts->loop_arg)
// before its loop serves and loop_fini after its child server is freed.
// Returns RR_OK and sets *out, or RR_ENOMEM / RR_EMFILE (rr_last_error
// says why).
int rr__loops_new(rr__loops **out, struct ev_loop *parent_loop, unsigned n,
                  rr_server *owner, const rr_server_opts *opts,
                  rr__methods *methods, void (*done)(void *arg), void *arg);

unsigned rr__loops_count(const rr__loops *ls);

// rr__loops_start starts the threads (once; later calls do nothing).
// Returns RR_OK or RR_ENOMEM.
int rr__loops_start(rr__loops *ls);

// rr__loops_hand gives the accepted socket fd, from peer sa, to loop i.
void rr__loops_hand(rr__loops *ls, unsigned i, int fd,
                    const struct sockaddr *sa, socklen_t len);

// rr__loops_shutdown asks every child to shut down with this grace.
void rr__loops_shutdown(rr__loops *ls, double grace);
// rr__loops_done: every child finished the shutdown asked for.
bool rr__loops_done(const rr__loops *ls);

// rr__loops_free frees the children (their connections close at once),
// stops and joins the threads.  NULL is a no-op.
void rr__loops_free(rr__loops *ls);

#endif // RR_LOOPS_H
