// SPDX-License-Identifier: MIT
//
// meta.h -- REQUEST and RESPONSE frames: metadata plus payload
// (docs/PROTOCOL.md, section 5).
//
// The metadata messages come from proto/rawrpc/v1/wire.proto through
// protoc-c.  Encoding packs the metadata and the payload once each,
// directly into the output buffer; decoding unpacks the metadata and leaves
// the payload where it is, to be unpacked straight from the receive buffer.

#ifndef RR_META_H
#define RR_META_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/buf.h"
#include "codec/frame.h"
#include "util/arena.h"
#include "rawrpc/v1/wire.pb-c.h"

// rr__call_put appends a REQUEST or RESPONSE frame (type) for call_id,
// with meta (a Rawrpc__V1__RequestMeta or __ResponseMeta) and the payload
// message; either may be NULL for "empty".  Returns RR_OK; RR_EMSGSIZE if
// the metadata exceeds 65535 bytes or the body exceeds max_body (the
// peer's MAX_FRAME_SIZE); or the errors of rr__buf_reserve.  On error
// nothing is appended.
int rr__call_put(rr_buf *b, uint8_t type, uint32_t call_id,
                 const ProtobufCMessage *meta, const ProtobufCMessage *payload,
                 uint32_t max_body);

// rr__call_put_raw is rr__call_put with a payload already packed: len
// bytes at payload (a reply packed on another thread).
int rr__call_put_raw(rr_buf *b, uint8_t type, uint32_t call_id,
                     const ProtobufCMessage *meta, const uint8_t *payload,
                     size_t len, uint32_t max_body);

// rr__unpack unpacks len bytes at data as a message of descriptor d,
// allocating through a (NULL: malloc).  Returns RR_OK and sets *out, to be
// freed with protobuf_c_message_free_unpacked(*out, a); RR_EPROTO if the
// bytes do not unpack; or RR_ENOMEM if an allocation failed, which
// protobuf_c_message_unpack does not tell from bytes that do not parse.
int rr__unpack(const ProtobufCMessageDescriptor *d, ProtobufCAllocator *a,
               size_t len, const uint8_t *data, ProtobufCMessage **out);

// rr__unpack_arena is rr__unpack into an arena, inline for the request
// of every call: the arena's failed flag tells running out of memory from
// bytes that do not parse.
static inline int
rr__unpack_arena(const ProtobufCMessageDescriptor *d, rr_arena *arena,
                 size_t len, const uint8_t *data, ProtobufCMessage **out)
{
    bool before = arena->failed;

    arena->failed = false;
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, &arena->alloc, len, data);
    bool failed = arena->failed;
    arena->failed |= before;
    if (m == NULL)
        return failed ? RR_ENOMEM : RR_EPROTO;
    *out = m;
    return RR_OK;
}

// rr__meta_unpack is rr__unpack of the metadata prefix of a decoded
// REQUEST or RESPONSE frame: RR_EPROTO for truncated or garbled
// metadata, RR_ENOMEM when out of memory.
int rr__meta_unpack(const ProtobufCMessageDescriptor *d, const rr_frame *f,
                    ProtobufCAllocator *a, ProtobufCMessage **out);

// What most requests carry as metadata: a method name and a deadline
// budget.  Both directions have a fast path for exactly this form, without
// protobuf-c, producing and accepting the same bytes it does.
typedef struct rr_request_head {
    const char *method; // not NUL-terminated
    size_t method_len;
    uint64_t timeout_us; // 0: none
} rr_request_head;

// rr__request_put appends a REQUEST with that metadata and a payload
// already packed (len bytes).  Returns what rr__call_put returns.
int rr__request_put(rr_buf *b, uint32_t call_id, const rr_request_head *h,
                    const uint8_t *payload, size_t len, uint32_t max_body);

// rr__request_head_decode reads a REQUEST's metadata (len bytes at p)
// when it has only that form: then it fills h and returns true; false
// for anything else (user metadata, unknown or repeated fields, a NUL in
// the method name, a timeout of 2^63 or more, bytes that do not parse),
// which the caller hands to rr__meta_unpack.
bool rr__request_head_decode(const uint8_t *p, size_t len, rr_request_head *h);

// rr__request_head_match is the decoder's shortcut for a name already
// known: true, with *timeout_us, when the metadata is exactly name
// (name_len bytes, fewer than 128) and at most a timeout, so that
// rr__request_head_decode would return that name and that timeout.
// False for anything else, which the decoder then reads.  Comparing the
// encoded name skips the decoder's scan of it and the method table.
bool rr__request_head_match(const uint8_t *p, size_t len, const char *name,
                            size_t name_len, uint64_t *timeout_us);

// rr__request_meta_method finds the method name in a REQUEST's metadata
// (len bytes at p) as the wire carries it, length included: protobuf-c's
// unpacked copy ends at the first NUL, so "/a.B/C\0x" would read as
// "/a.B/C".  The last occurrence wins, as in protobuf.  Returns false when
// the bytes do not parse as protobuf fields; an absent name is "".
bool rr__request_meta_method(const uint8_t *p, size_t len, const char **name,
                             size_t *name_len);

// rr__response_message_room returns how many message bytes a ResponseMeta
// with a non-OK status and no user metadata can carry within limit
// bytes (the client's MAX_METADATA_SIZE): 0 when only the status fits, or
// not even that (the status is then sent alone all the same, section 4).
size_t rr__response_message_room(uint32_t status, size_t limit);

// The payload of a decoded REQUEST or RESPONSE: the bytes after the
// metadata.
static inline const uint8_t *
rr__frame_payload(const rr_frame *f)
{
    return f->body + f->meta_len;
}

static inline size_t
rr__frame_payload_len(const rr_frame *f)
{
    return (size_t) f->length - f->meta_len;
}

#endif // RR_META_H
