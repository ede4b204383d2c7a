// SPDX-License-Identifier: MIT
//
// evtimer.h -- libev timer helpers shared by the server and the channel.

#ifndef RR_EVTIMER_H
#define RR_EVTIMER_H

#include <ev.h>

// Stops t only when libev holds it (active, or expired and pending): the
// owners stop a deadline timer on every call, and most calls never
// started one, so this saves a call into libev per call.
static inline void
rr__timer_stop(struct ev_loop *loop, ev_timer *t)
{
    if (ev_is_active(t) || ev_is_pending(t))
        ev_timer_stop(loop, t);
}

#endif // RR_EVTIMER_H
