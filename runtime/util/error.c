// SPDX-License-Identifier: MIT
//
// error.c -- the library's version, error and status-code names, errno
// mapped to rr_err, and the thread's last error sentence; see error.h.
//
// All names are static text, so callers never free them and they are
// safe from any thread; the last error sentence is thread-local.

#include "util/errmap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "rawrpc/rawrpc.h"

static _Thread_local char last_error[RR__LAST_ERROR_MAX];

const char *
rr_version(void)
{
    return RAWRPC_VERSION_STRING;
}

const char *
rr_strerror(int err)
{
    switch ((rr_err) err) {
    case RR_OK:
        return "success";
    case RR_ENOMEM:
        return "out of memory";
    case RR_EINVAL:
        return "invalid argument";
    case RR_ECLOSED:
        return "connection closed";
    case RR_ETIMEDOUT:
        return "timed out";
    case RR_EPROTO:
        return "protocol violation";
    case RR_EMSGSIZE:
        return "message exceeds a size limit";
    case RR_ENOMETHOD:
        return "no such method";
    case RR_ENOBUFS:
        return "output buffer full";
    case RR_EPREFACE:
        return "peer is not speaking rawrpc";
    case RR_EVERSION:
        return "unsupported protocol version";
    case RR_EADDRINUSE:
        return "address already in use";
    case RR_EACCES:
        return "permission denied";
    case RR_EMFILE:
        return "too many open files";
    case RR_EADDRNOTAVAIL:
        return "address not available";
    }
    return "unknown error";
}

int
rr__err_from_errno(int err)
{
    switch (err) {
    case 0:
        return RR_OK;
    case ENOMEM:
    case ENOBUFS:
        return RR_ENOMEM;
    case EMFILE:
    case ENFILE:
        return RR_EMFILE;
    case EADDRINUSE:
        return RR_EADDRINUSE;
    case EACCES:
    case EPERM:
    case EROFS:
        return RR_EACCES;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case ENAMETOOLONG:
        return RR_EADDRNOTAVAIL;
    case ETIMEDOUT:
        return RR_ETIMEDOUT;
    case EINVAL:
        return RR_EINVAL;
    default:
        return RR_ECLOSED;
    }
}

void
rr__set_last_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

const char *
rr_last_error(void)
{
    return last_error;
}

const char *
rr_status_name(uint32_t status)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };

    if (status > RR_STATUS_MAX)
        return "UNKNOWN";
    return names[status];
}
