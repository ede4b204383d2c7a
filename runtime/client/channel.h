// SPDX-License-Identifier: MIT
//
// channel.h -- what tests may do to a channel beyond the public API.

#ifndef RR_CHANNEL_H
#define RR_CHANNEL_H

#include <stdint.h>

#include "rawrpc/rawrpc.h"

// rr__channel_set_next_id makes the current connection's next call ID id,
// so a test can reach ID exhaustion without 2^32 calls.  Returns RR_OK,
// or RR_EINVAL when there is no connection.
int rr__channel_set_next_id(rr_channel *ch, uint32_t id);

// rr__channel_set_next_token makes the next token rr_channel_call hands
// out token (or the next whose low 32 bits are neither 0 nor a live
// call's), so a test can reach the 2^32 wrap of the token map's key.
void rr__channel_set_next_token(rr_channel *ch, uint64_t token);

#endif // RR_CHANNEL_H
