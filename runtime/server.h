// SPDX-License-Identifier: MIT
//
// server.h -- what tests may see of a server beyond the public API.

#ifndef RR_SERVER_H
#define RR_SERVER_H

#include <stddef.h>

#include "rawrpc/rawrpc.h"

// rr__server_buffered returns the bytes queued for writing on all the
// server's connections: what a peer that stops reading costs us.
size_t rr__server_buffered(const rr_server *srv);

#endif // RR_SERVER_H
