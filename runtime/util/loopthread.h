// SPDX-License-Identifier: MIT
//
// loopthread.h -- an event loop on a thread of its own, and a mailbox to
// it.
//
// Other threads never touch the loop: they post tasks, which run on the
// loop's thread in the order posted (a mutex-guarded queue and one
// ev_async, libev's way across threads).  The module knows nothing of
// what runs there; the server's extra loops (server/loops.c) are one user.

#ifndef RR_LOOPTHREAD_H
#define RR_LOOPTHREAD_H

#include <ev.h>
#include <stddef.h>

typedef struct rr__loopthread rr__loopthread;

// A task's payload is copied into the mailbox: at most this many bytes.
#define RR__LOOPTHREAD_DATA 160

// A task runs on the loop's thread with its loop, arg, and its copy of
// the data posted.
typedef void (*rr__loopthread_fn)(struct ev_loop *loop, void *arg, void *data);
// A hook runs on the loop's thread before it serves, or after it stopped.
typedef void (*rr__loopthread_hook)(struct ev_loop *loop, void *arg);

// rr__loopthread_new makes a loop, not yet running: the caller may set
// things up on it from here until rr__loopthread_start.  Returns RR_OK
// and sets *out, or RR_ENOMEM / RR_EMFILE.
int rr__loopthread_new(rr__loopthread **out);

struct ev_loop *rr__loopthread_loop(const rr__loopthread *t);

// rr__loopthread_start starts the thread: init(loop, arg) runs first,
// then the loop, until rr__loopthread_stop; then fini(loop, arg), and
// one more non-blocking pass of the loop for what fini closed.  Either
// hook may be NULL.  Returns RR_OK or RR_ENOMEM.
int rr__loopthread_start(rr__loopthread *t, rr__loopthread_hook init,
                         rr__loopthread_hook fini, void *arg);

// rr__loopthread_post queues fn(loop, arg, copy of len bytes at data) to
// run on the loop's thread, from any thread (before the start too: it
// runs once the loop does).  A task that will never run, because the
// thread is freed without having started, goes to drop(arg, data) if
// drop is not NULL, so that what it carries (a descriptor, say) is not
// lost.  Returns RR_OK, RR_EINVAL (len too large, or the thread is
// stopping: the task will not run, and drop is not called) or RR_ENOMEM.
int rr__loopthread_post(rr__loopthread *t, rr__loopthread_fn fn,
                        void (*drop)(void *arg, void *data), void *arg,
                        const void *data, size_t len);

// rr__loopthread_stop runs last(loop, arg) on the loop's thread after
// every task posted before it, stops the loop and joins the thread (the
// fini hook has run when it returns).  Not from the loop's thread.  On a
// thread never started, the queued tasks are dropped and last runs here,
// on the caller's thread.  Later posts are refused.  Once only.
void rr__loopthread_stop(rr__loopthread *t, rr__loopthread_hook last,
                         void *arg);

// rr__loopthread_free stops the thread if it was not stopped (with no
// last task) and frees the loop and the mailbox.  NULL is a no-op.
void rr__loopthread_free(rr__loopthread *t);

#endif // RR_LOOPTHREAD_H
