// SPDX-License-Identifier: MIT
//
// error.c -- the library's version, error and status-code names.
//
// All text is static, so callers never free it and it is safe from any
// thread.

#include "rawrpc/rawrpc.h"

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
    }
    return "unknown error";
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
