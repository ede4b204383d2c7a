// SPDX-License-Identifier: MIT
//
// log.h -- the library's logging, routed through rr_log_set's callback.

#ifndef RR_LOG_H
#define RR_LOG_H

#include "rawrpc/rawrpc.h"

// rr__log formats one line and hands it to the log callback, unless level
// is below the threshold (then nothing is formatted).
__attribute__((format(printf, 2, 3))) void rr__log(rr_log_level level,
                                                   const char *fmt, ...);

#endif // RR_LOG_H
