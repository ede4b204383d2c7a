// SPDX-License-Identifier: MIT
//
// server.h -- what tests and the extra loops (loops.c) see of a server
// beyond the public API.

#ifndef RR_SERVER_H
#define RR_SERVER_H

#include <stddef.h>
#include <sys/socket.h>

#include "rawrpc/rawrpc.h"

// rr__server_buffered returns the bytes queued for writing on all the
// server's connections: what a peer that stops reading costs us.
size_t rr__server_buffered(const rr_server *srv);

// rr__server_adopt makes the accepted socket fd, from peer sa, one of
// srv's connections on srv's loop (or closes it past the limits).
void rr__server_adopt(rr_server *srv, int fd, const struct sockaddr *sa,
                      socklen_t len);

#endif // RR_SERVER_H
