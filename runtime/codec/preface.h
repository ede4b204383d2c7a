// SPDX-License-Identifier: MIT
//
// preface.h -- the connection preface and the SETTINGS frame
// (docs/PROTOCOL.md, sections 2 and 4).
//
// Both decoders are pure, like rr__frame_decode.  The preface decoder
// checks the magic byte by byte as it arrives, so "GET / HTTP/1.1" is
// rejected on its first byte rather than after twelve.

#ifndef RR_PREFACE_H
#define RR_PREFACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/buf.h"
#include "codec/frame.h"

#define RR_PREFACE_SIZE 12
#define RR_MAGIC_SIZE   8

extern const uint8_t rr__magic[RR_MAGIC_SIZE];

// SETTINGS ids (section 4).
enum {
    RR_SETTING_MAX_FRAME_SIZE = 1,
    RR_SETTING_MAX_CONCURRENT_CALLS = 2,
    RR_SETTING_HEARTBEAT_INTERVAL_MS = 3,
    RR_SETTING_MAX_METADATA_SIZE = 4,
};

// Initial values: assumed before the peer's SETTINGS arrive and for
// settings it leaves out.
#define RR_DEFAULT_MAX_FRAME_SIZE        (4u * 1024 * 1024)
#define RR_DEFAULT_MAX_CONCURRENT_CALLS  100u
#define RR_DEFAULT_HEARTBEAT_INTERVAL_MS 0u
#define RR_DEFAULT_MAX_METADATA_SIZE     8192u
#define RR_MIN_MAX_FRAME_SIZE            1024u

// One side's limits: what it is willing to receive.
typedef struct rr_settings {
    uint32_t max_frame_size;        // largest frame body, bytes
    uint32_t max_concurrent_calls;  // calls in flight on one connection
    uint32_t heartbeat_interval_ms; // 0: sends no heartbeats
    uint32_t max_metadata_size;     // largest meta_len, <= 65535
} rr_settings;

// rr__preface_put appends the 12-byte preface for version.
int rr__preface_put(rr_buf *b, uint16_t version);

// rr__preface_decode reads a peer's preface from buf[0..len).  It returns
// RR_PREFACE_SIZE and sets *version when the preface is complete and
// valid, 0 while every byte so far matches the magic, RR_EPREFACE at the
// first byte that does not, or RR_EVERSION for version 0.
ssize_t rr__preface_decode(const uint8_t *buf, size_t len, uint16_t *version);

// rr__preface_describe writes why buf[0..len) is not a valid preface, for
// the GOAWAY message and the log: the first bad byte, and the bytes
// received as printable text so that "GET / HT" is recognisable.
void rr__preface_describe(const uint8_t *buf, size_t len, char *msg,
                          size_t msgsz);

// rr__settings_init sets s to the protocol's initial values.
void rr__settings_init(rr_settings *s);

// rr__settings_put appends a SETTINGS frame carrying all four values.
int rr__settings_put(rr_buf *b, const rr_settings *s);

// rr__settings_decode applies a decoded SETTINGS frame to *s, which holds
// the values assumed so far; unknown ids are ignored and the last of a
// repeated id wins.  Returns RR_OK, or RR_EPROTO for a value outside its
// range (then *s is unchanged and msg, if not NULL, says which).
int rr__settings_decode(const rr_frame *f, rr_settings *s, char *msg,
                        size_t msgsz);

#endif // RR_PREFACE_H
