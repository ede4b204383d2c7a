// SPDX-License-Identifier: MIT
//
// proxy.h -- a fault-injecting TCP proxy on a libev loop, for the fault
// suite.  It listens on 127.0.0.1 (port chosen by the kernel) and relays
// each connection to an upstream address; on command it delays every
// chunk, cuts the stream into 1-byte writes, stalls (holds bytes without
// forwarding), blackholes (drops bytes silently, connections stay open:
// a dead network without FIN or RST), or resets every connection.

#ifndef RR_TEST_PROXY_H
#define RR_TEST_PROXY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct proxy proxy;

typedef enum proxy_mode {
    PROXY_PASS,      // relay as is
    PROXY_DELAY,     // relay each chunk after delay seconds
    PROXY_PIECES,    // relay after delay, one byte per write, 0.2 ms apart
    PROXY_STALL,     // hold everything; relay it when the mode changes
    PROXY_BLACKHOLE, // read and drop everything
} proxy_mode;

// proxy_new listens and relays to 127.0.0.1:upstream_port.  NULL on error.
proxy *proxy_new(struct ev_loop *loop, uint16_t upstream_port);
uint16_t proxy_port(const proxy *p);

// proxy_set sets the mode, and the delay for PROXY_DELAY and
// PROXY_PIECES.
void proxy_set(proxy *p, proxy_mode mode, double delay);

// proxy_reset closes every relayed connection with a TCP RST on both
// sides (SO_LINGER 0).
void proxy_reset(proxy *p);

// proxy_conns is the number of connections being relayed.
int proxy_conns(const proxy *p);

void proxy_free(proxy *p);

#endif // RR_TEST_PROXY_H
