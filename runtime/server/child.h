// SPDX-License-Identifier: MIT
//
// call.h -- what the channel needs of a server call: to hang its own
// outgoing calls under it, so that cancelling the parent cancels them
// (deadline and cancellation propagation, rr_call_opts.parent).

#ifndef RR_CALL_H
#define RR_CALL_H

#include "rawrpc/rawrpc.h"

typedef struct rr__child rr__child;

struct rr__child {
    rr__child *next;
    rr__child **pprev;                // NULL when not linked
    void (*cancel)(rr__child *child); // the parent was cancelled
};

// rr__call_link_child hangs child under parent, which must not be
// cancelled yet (the caller checks rr_call_cancelled first).  When the
// parent is cancelled, child->cancel runs; when the parent completes, the
// child is unlinked and runs on by itself.
void rr__call_link_child(rr_call *parent, rr__child *child);

// rr__call_unlink_child takes child off its parent's list, if on one.
// Inline for the common case of a call without a parent.
void rr__call_unlink_child_slow(rr__child *child);

static inline void
rr__call_unlink_child(rr__child *child)
{
    if (child->pprev != NULL)
        rr__call_unlink_child_slow(child);
}

#endif // RR_CALL_H
