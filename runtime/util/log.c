// SPDX-License-Identifier: MIT
//
// log.c -- one log callback for the process; see log.h.
//
// The callback is global, like libev's syserr callback: set it once at
// start-up, before loops run on other threads.

#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void log_default(rr_log_level level, const char *msg, void *arg);

static rr_log_cb log_cb = log_default;
static void *log_arg;
static rr_log_level log_min = RR_LOG_WARN;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

static void
log_default(rr_log_level level, const char *msg, void *arg)
{
    (void) arg;
    struct timespec ts;
    struct tm tm;
    char when[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ rawrpc %s: %s\n", when, ts.tv_nsec / 1000000,
            level_names[level], msg);
}

void
rr_log_set(rr_log_cb cb, void *arg, rr_log_level min)
{
    log_cb = cb != NULL ? cb : log_default;
    log_arg = cb != NULL ? arg : NULL;
    log_min = min;
}

int
rr_log_level_parse(const char *name, rr_log_level *out)
{
    for (int i = RR_LOG_DEBUG; i <= RR_LOG_OFF; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (rr_log_level) i;
            return RR_OK;
        }
    }
    return RR_EINVAL;
}

static bool
log_enabled(rr_log_level level)
{
    return level >= log_min && level < RR_LOG_OFF;
}

void
rr__bug(const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "rawrpc: bug in the program: %s\n", line);
    if (log_cb != log_default && log_enabled(RR_LOG_ERROR))
        log_cb(RR_LOG_ERROR, line, log_arg);
#ifndef NDEBUG
    abort();
#endif
}

void
rr__log(rr_log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;

    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_cb(level, line, log_arg);
}
