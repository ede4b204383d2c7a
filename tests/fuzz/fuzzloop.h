// SPDX-License-Identifier: MIT
//
// fuzzloop.h -- what the connection-level fuzz targets share: letting a
// little loop time pass so that heartbeats and deadlines fire.
#ifndef RR_FUZZLOOP_H
#define RR_FUZZLOOP_H

#include <ev.h>

static inline void
fuzz_wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) w;
    (void) revents;
    ev_break(loop, EVBREAK_ONE);
}

// Runs the loop for the given seconds of loop time.
static inline void
fuzz_run_for(struct ev_loop *loop, double seconds)
{
    ev_timer t;

    ev_timer_init(&t, fuzz_wait_cb, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

#endif
