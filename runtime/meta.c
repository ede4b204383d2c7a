// SPDX-License-Identifier: MIT
//
// meta.c -- REQUEST/RESPONSE frame encode and metadata decode; see meta.h.

#include "meta.h"

#include <string.h>

#include "rawrpc/rawrpc.h"

static size_t
packed_size(const ProtobufCMessage *m)
{
    return m != NULL ? protobuf_c_message_get_packed_size(m) : 0;
}

// Frames meta plus a payload given either as a message or as bytes.
static int
call_put(rr_buf *b, uint8_t type, uint32_t call_id,
         const ProtobufCMessage *meta, const ProtobufCMessage *payload,
         const uint8_t *raw, size_t raw_len, uint32_t max_body)
{
    size_t meta_len = packed_size(meta);
    size_t payload_len = payload != NULL ? packed_size(payload) : raw_len;

    if (meta_len > RR_META_MAX || meta_len > max_body ||
        payload_len > max_body - meta_len)
        return RR_EMSGSIZE;

    size_t len = meta_len + payload_len;
    rr_frame f = {
        .length = (uint32_t) len,
        .type = type,
        .meta_len = (uint16_t) meta_len,
        .call_id = call_id,
    };
    uint8_t *p;
    int rv = rr__frame_start(b, &f, &p);
    if (rv != RR_OK)
        return rv;
    if (meta != NULL)
        protobuf_c_message_pack(meta, p);
    if (payload != NULL)
        protobuf_c_message_pack(payload, p + meta_len);
    else if (raw_len > 0)
        memcpy(p + meta_len, raw, raw_len);
    rr__buf_commit(b, RR_FRAME_HEADER_SIZE + len);
    return RR_OK;
}

int
rr__call_put(rr_buf *b, uint8_t type, uint32_t call_id,
             const ProtobufCMessage *meta, const ProtobufCMessage *payload,
             uint32_t max_body)
{
    return call_put(b, type, call_id, meta, payload, NULL, 0, max_body);
}

int
rr__call_put_raw(rr_buf *b, uint8_t type, uint32_t call_id,
                 const ProtobufCMessage *meta, const uint8_t *payload,
                 size_t len, uint32_t max_body)
{
    return call_put(b, type, call_id, meta, NULL, payload, len, max_body);
}

int
rr__meta_unpack(const ProtobufCMessageDescriptor *d, const rr_frame *f,
                ProtobufCAllocator *a, ProtobufCMessage **out)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, a, f->meta_len, f->body);

    if (m == NULL)
        return RR_EPROTO;
    *out = m;
    return RR_OK;
}
