// SPDX-License-Identifier: MIT
//
// log.c -- one log callback for the process; see log.h.
//
// The callback is global, like libev's syserr callback: set it once at
// start-up, before loops run on other threads.

#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void log_default(rr_log_level level, const char *msg, void *arg);

static rr_log_cb log_cb = log_default;
static void *log_arg;
// The threshold: RR_LOG_WARN, or $RAWRPC_LOG, read at the first use.
// RR_LOG_OFF + 1 means not read yet.
atomic_int rr__log_min = RR_LOG_OFF + 1;
static pthread_once_t log_env_once = PTHREAD_ONCE_INIT;

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

static void
log_env(void)
{
    const char *env = getenv("RAWRPC_LOG");
    rr_log_level level = RR_LOG_WARN;

    if (env != NULL && *env != '\0' && rr_log_level_parse(env, &level) != RR_OK)
        fprintf(stderr,
                "rawrpc: RAWRPC_LOG=%s is not one of debug, info, "
                "warn, error, off: using warn\n",
                env);
    int unset = RR_LOG_OFF + 1;
    atomic_compare_exchange_strong(&rr__log_min, &unset, (int) level);
}

int
rr__log_threshold(void)
{
    pthread_once(&log_env_once, log_env);
    return atomic_load_explicit(&rr__log_min, memory_order_relaxed);
}

void
rr_log_set(rr_log_cb cb, void *arg, rr_log_level min)
{
    pthread_once(&log_env_once, log_env); // then min wins over it
    log_cb = cb != NULL ? cb : log_default;
    log_arg = cb != NULL ? arg : NULL;
    atomic_store(&rr__log_min, (int) min);
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
    return rr__log_on(level);
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
