// SPDX-License-Identifier: MIT
//
// rawrpc.h -- the whole public API of rawrpc.
//
// rawrpc carries length-prefixed protobuf-c messages over plain TCP on a
// libev loop; docs/PROTOCOL.md specifies the bytes.  This header is sectioned
// like uv.h: version, errors, status codes.  Every function documents its
// contract in a paragraph that starts with its name.

#ifndef RAWRPC_H
#define RAWRPC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RAWRPC_STATIC) || !defined(__GNUC__)
#define RR_API
#else
#define RR_API __attribute__((visibility("default")))
#endif

// ---------------------------------------------------------------- version

#define RAWRPC_VERSION_MAJOR  0
#define RAWRPC_VERSION_MINOR  1
#define RAWRPC_VERSION_PATCH  0
#define RAWRPC_VERSION_STRING "0.1.0"

// The wire protocol version this library speaks (docs/PROTOCOL.md).
#define RAWRPC_PROTOCOL_VERSION 1

// rr_version returns the library's version as "MAJOR.MINOR.PATCH".  It may
// differ from RAWRPC_VERSION_STRING when a program was compiled against
// other headers than the library it runs with.
RR_API const char *rr_version(void);

// ----------------------------------------------------------------- errors

// Every function that can fail returns 0 (RR_OK) or one of these negative
// codes, so a signed size can carry a count or an error.  Raw errno values
// never leak: a reset and a broken pipe are both RR_ECLOSED.
typedef enum rr_err {
    RR_OK = 0,
    RR_ENOMEM = -1,    // out of memory
    RR_EINVAL = -2,    // invalid argument (a programming error)
    RR_ECLOSED = -3,   // the connection is closed, reset or broken
    RR_ETIMEDOUT = -4, // a deadline passed, or the heartbeat was lost
    RR_EPROTO = -5,    // the peer broke the protocol
    RR_EMSGSIZE = -6,  // a frame or message exceeds a size limit
    RR_ENOMETHOD = -7, // no such method
    RR_ENOBUFS = -8,   // an output buffer reached its cap
    RR_EPREFACE = -9,  // the peer is not speaking rawrpc
    RR_EVERSION = -10, // the peer's protocol version is not supported
} rr_err;

// rr_strerror returns a static English description of err, or of an
// unknown code "unknown error".  It never returns NULL.
RR_API const char *rr_strerror(int err);

// ----------------------------------------------------------- status codes

// The status of a finished call: gRPC's canonical codes with gRPC's
// numbers, so they mean what gRPC users already know (docs/PROTOCOL.md,
// section 5.3).
typedef enum rr_status {
    RR_STATUS_OK = 0,
    RR_STATUS_CANCELLED = 1,
    RR_STATUS_UNKNOWN = 2,
    RR_STATUS_INVALID_ARGUMENT = 3,
    RR_STATUS_DEADLINE_EXCEEDED = 4,
    RR_STATUS_NOT_FOUND = 5,
    RR_STATUS_ALREADY_EXISTS = 6,
    RR_STATUS_PERMISSION_DENIED = 7,
    RR_STATUS_RESOURCE_EXHAUSTED = 8,
    RR_STATUS_FAILED_PRECONDITION = 9,
    RR_STATUS_ABORTED = 10,
    RR_STATUS_OUT_OF_RANGE = 11,
    RR_STATUS_UNIMPLEMENTED = 12,
    RR_STATUS_INTERNAL = 13,
    RR_STATUS_UNAVAILABLE = 14,
    RR_STATUS_DATA_LOSS = 15,
    RR_STATUS_UNAUTHENTICATED = 16,
} rr_status;

#define RR_STATUS_MAX RR_STATUS_UNAUTHENTICATED

// rr_status_name returns the canonical upper-case name of a status code,
// "NOT_FOUND" for 5; codes above RR_STATUS_MAX are reported as "UNKNOWN",
// as the protocol says they must be treated.  It never returns NULL.
RR_API const char *rr_status_name(uint32_t status);

#ifdef __cplusplus
}
#endif

#endif // RAWRPC_H
