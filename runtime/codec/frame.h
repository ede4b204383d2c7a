// SPDX-License-Identifier: MIT
//
// frame.h -- the 12-byte frame header of docs/PROTOCOL.md, section 3.
//
// Decoding is a pure function in the picohttpparser shape: it is given
// bytes and returns how many it used, 0 for "incomplete", or an error; it
// keeps no state, allocates nothing and never reads past the input, so the
// connection, the tests and the fuzzer all run exactly the same code.
// Encoding appends whole frames to a capped rr_buf, ready for one write.

#ifndef RR_FRAME_H
#define RR_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/buf.h"
#include "codec/byteorder.h"

#define RR_FRAME_HEADER_SIZE  12
#define RR_PING_SIZE          8
#define RR_GOAWAY_FIXED_SIZE  8
#define RR_SETTING_ENTRY_SIZE 6
#define RR_META_MAX           65535u // meta_len is 16 bits wide

// Frame types (section 3).  Types from RR_FRAME_EXT_MIN up are extensions
// a receiver skips; everything else it does not know is an error.
enum {
    RR_FRAME_SETTINGS = 0x01,
    RR_FRAME_REQUEST = 0x02,
    RR_FRAME_RESPONSE = 0x03,
    RR_FRAME_CANCEL = 0x04,
    RR_FRAME_PING = 0x05,
    RR_FRAME_PONG = 0x06,
    RR_FRAME_GOAWAY = 0x07,
    RR_FRAME_EXT_MIN = 0x80,
};

// GOAWAY error codes (section 10).
enum {
    RR_GOAWAY_NO_ERROR = 0,
    RR_GOAWAY_PROTOCOL_ERROR = 1,
    RR_GOAWAY_FRAME_TOO_LARGE = 2,
    RR_GOAWAY_BAD_PREFACE = 3,
    RR_GOAWAY_UNSUPPORTED_VERSION = 4,
    RR_GOAWAY_SETTINGS_ERROR = 5,
    RR_GOAWAY_HANDSHAKE_TIMEOUT = 6,
    RR_GOAWAY_HEARTBEAT_TIMEOUT = 7,
    RR_GOAWAY_ENHANCE_YOUR_CALM = 8,
    RR_GOAWAY_INTERNAL_ERROR = 9,
};

// One decoded frame.  body points into the buffer that was decoded and is
// valid as long as those bytes are.
typedef struct rr_frame {
    uint32_t length;     // body bytes after the header
    uint8_t type;        // RR_FRAME_*
    uint8_t flags;       // none defined in v1
    uint16_t meta_len;   // metadata prefix of the body (REQUEST, RESPONSE)
    uint32_t call_id;    // 0 for connection frames
    const uint8_t *body; // length bytes
} rr_frame;

// A parsed GOAWAY body; message points into the frame and is not
// NUL-terminated.
typedef struct rr_goaway {
    uint32_t last_call_id;
    uint32_t code; // RR_GOAWAY_*
    const char *message;
    size_t message_len;
} rr_goaway;

// rr__frame_decode decodes one frame from buf[0..len).  It returns the
// bytes the frame takes (> 0), 0 if the frame is not complete yet, or
// RR_EMSGSIZE (length over max_body) or RR_EPROTO (a header rule of
// section 3 broken).  Errors are found from the header alone, so a 4 GiB
// length fails as soon as 12 bytes are in.  Whenever the 12 header bytes
// are present, *out's header fields are filled, also on 0 and on error:
// the caller can size its buffer for the whole frame, or describe the
// error with rr__frame_check.  out->body is set only on success.
ssize_t rr__frame_decode(const uint8_t *buf, size_t len, uint32_t max_body,
                         rr_frame *out);

// rr__frame_check applies the header rules of section 3 to f.  Returns
// RR_OK, RR_EMSGSIZE or RR_EPROTO; on an error, if msg is not NULL, it
// writes a sentence naming the rule and the numbers, e.g. "frame of
// 9437184 bytes exceeds the 4194304-byte limit".
int rr__frame_check(const rr_frame *f, uint32_t max_body, char *msg,
                    size_t msgsz);

// rr__frame_header_put writes the 12 header bytes of f to out.  Inline:
// every REQUEST and RESPONSE goes through it.
static inline void
rr__frame_header_put(uint8_t *out, const rr_frame *f)
{
    rr__put_be32(out, f->length);
    out[4] = f->type;
    out[5] = f->flags;
    rr__put_be16(out + 6, f->meta_len);
    rr__put_be32(out + 8, f->call_id);
}

// rr__frame_start reserves room for a whole frame whose header is h,
// writes the header and sets *body to where its h->length body bytes go.
// The frame counts once the caller has written the body and called
// rr__buf_commit(b, RR_FRAME_HEADER_SIZE + h->length).  Errors as
// rr__buf_reserve.
int rr__frame_start(rr_buf *b, const rr_frame *h, uint8_t **body);

// rr__frame_start_inline is the same, inline, for the REQUEST and
// RESPONSE encoder, where the header's fields fold into the stores.
static inline int
rr__frame_start_inline(rr_buf *b, const rr_frame *h, uint8_t **body)
{
    uint8_t *p;
    int rv = rr__buf_reserve(b, RR_FRAME_HEADER_SIZE + (size_t) h->length, &p);

    if (rv != RR_OK)
        return rv;
    rr__frame_header_put(p, h);
    *body = p + RR_FRAME_HEADER_SIZE;
    return RR_OK;
}

// rr__frame_put appends a frame with a raw body of len bytes.  Returns
// RR_OK, RR_EMSGSIZE if len does not fit the 32-bit length, or the errors
// of rr__buf_reserve; on error nothing is appended.
int rr__frame_put(rr_buf *b, uint8_t type, uint32_t call_id, const void *body,
                  size_t len);

// rr__frame_put_ping appends a PING or PONG (type) with 8 opaque bytes.
int rr__frame_put_ping(rr_buf *b, uint8_t type, const uint8_t *data);

// rr__frame_put_cancel appends a CANCEL of call_id.
int rr__frame_put_cancel(rr_buf *b, uint32_t call_id);

// rr__frame_put_goaway appends a GOAWAY; message may be NULL.
int rr__frame_put_goaway(rr_buf *b, uint32_t last_call_id, uint32_t code,
                         const char *message);

// rr__goaway_parse reads a decoded GOAWAY frame's body (its size was
// checked by the decoder).
void rr__goaway_parse(const rr_frame *f, rr_goaway *out);

// rr__frame_type_name returns "REQUEST" for RR_FRAME_REQUEST, "unknown" for
// types it does not know.  Never NULL.
const char *rr__frame_type_name(uint8_t type);

// rr__goaway_code_name returns "FRAME_TOO_LARGE" for 2; codes it does not
// know are "PROTOCOL_ERROR", as section 10 says they are treated.
const char *rr__goaway_code_name(uint32_t code);

#endif // RR_FRAME_H
