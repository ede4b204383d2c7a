// SPDX-License-Identifier: MIT
//
// addr.h -- "host:port", "[v6]:port" and "unix:/path" to socket addresses,
// and back.

#ifndef RR_ADDR_H
#define RR_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct rr_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} rr_addr;

// rr__addr_parse fills *out from s.  A host that is not a numeric address
// is resolved with getaddrinfo, which blocks.  Returns RR_OK or RR_EINVAL;
// then msg gets a sentence naming s and what is wrong with it
// ("127.0.0.1:99999: port 99999 is out of range (0 to 65535)"), also set
// as the thread's rr_last_error.
int rr__addr_parse(const char *s, rr_addr *out, char *msg, size_t msgsz);

// rr__addr_parse_listen is rr__addr_parse for a listener: an empty host,
// ":port", means every interface and gives "[::]:port" with *any set, so
// the caller can fall back to rr__addr_any4 on a machine without IPv6.
int rr__addr_parse_listen(const char *s, rr_addr *out, bool *any, char *msg,
                          size_t msgsz);

// rr__addr_any4 turns "[::]:port" into "0.0.0.0:port".
void rr__addr_any4(rr_addr *a);

// rr__addr_format writes "1.2.3.4:5", "[::1]:5" or "unix:/path"; an
// IPv4-mapped IPv6 address (a client of a dual-stack listener) is written
// as the IPv4 address it is.
void rr__addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                     size_t n);

#endif // RR_ADDR_H
