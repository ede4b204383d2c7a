// SPDX-License-Identifier: MIT
//
// log.h -- the library's logging, routed through rr_log_set's callback.

#ifndef RR_LOG_H
#define RR_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

#include "rawrpc/rawrpc.h"

extern atomic_int rr__log_min;
int rr__log_threshold(void);

// rr__log_on tells whether lines of level are logged: inline, for the
// per-call debug line whose formatting must cost nothing when off.
static inline bool
rr__log_on(rr_log_level level)
{
    int min = atomic_load_explicit(&rr__log_min, memory_order_relaxed);

    if (min > RR_LOG_OFF) // $RAWRPC_LOG not read yet
        min = rr__log_threshold();
    return (int) level >= min && level < RR_LOG_OFF;
}

// rr__log formats one line and hands it to the log callback, unless level
// is below the threshold (then nothing is formatted).
__attribute__((format(printf, 2, 3))) void rr__log(rr_log_level level,
                                                   const char *fmt, ...);

// rr__bug reports a user's misuse of the API that the library can detect
// (a call completed twice): always on stderr, whatever the log level, and
// then, unless NDEBUG is defined, abort().  Without abort the caller goes
// on as if the misuse had not happened, so it never hangs or corrupts.
__attribute__((format(printf, 1, 2))) void rr__bug(const char *fmt, ...);

#endif // RR_LOG_H
