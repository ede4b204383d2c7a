// SPDX-License-Identifier: MIT
//
// meta.c -- REQUEST/RESPONSE frame encode and metadata decode; see meta.h.

#include "codec/meta.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rawrpc/rawrpc.h"
#include "util/arena.h"

static size_t
packed_size(const ProtobufCMessage *m)
{
    return m != NULL ? protobuf_c_message_get_packed_size(m) : 0;
}

// Reserves a REQUEST or RESPONSE (type) of meta_len + payload_len body
// bytes and writes its header; *p is where the metadata goes.
static int
call_start(rr_buf *b, uint8_t type, uint32_t call_id, size_t meta_len,
           size_t payload_len, uint32_t max_body, uint8_t **p)
{
    if (meta_len > RR_META_MAX || meta_len > max_body ||
        payload_len > max_body - meta_len)
        return RR_EMSGSIZE;

    rr_frame f = {
        .length = (uint32_t) (meta_len + payload_len),
        .type = type,
        .meta_len = (uint16_t) meta_len,
        .call_id = call_id,
    };
    return rr__frame_start_inline(b, &f, p);
}

// Frames meta plus a payload given either as a message or as bytes.
static int
call_put(rr_buf *b, uint8_t type, uint32_t call_id,
         const ProtobufCMessage *meta, const ProtobufCMessage *payload,
         const uint8_t *raw, size_t raw_len, uint32_t max_body)
{
    size_t meta_len = packed_size(meta);
    size_t payload_len = payload != NULL ? packed_size(payload) : raw_len;
    uint8_t *p;
    int rv = call_start(b, type, call_id, meta_len, payload_len, max_body, &p);

    if (rv != RR_OK)
        return rv;
    if (meta != NULL)
        protobuf_c_message_pack(meta, p);
    if (payload != NULL)
        protobuf_c_message_pack(payload, p + meta_len);
    else if (raw_len > 0)
        memcpy(p + meta_len, raw, raw_len);
    rr__buf_commit(b, RR_FRAME_HEADER_SIZE + meta_len + payload_len);
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

// Protobuf wire tags of RequestMeta's method (field 1, length-delimited)
// and timeout_us (field 2, varint).
#define TAG_METHOD  0x0A
#define TAG_TIMEOUT 0x10

static size_t
varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    for (; v >= 0x80; v >>= 7)
        p[n++] = (uint8_t) (v | 0x80);
    p[n++] = (uint8_t) v;
    return n;
}

// Reads a varint of at most max bytes (9 at most: below 2^63); returns its
// length, or 0 when it is longer or cut short.
static size_t
varint_get(const uint8_t *p, size_t len, size_t max, uint64_t *v)
{
    uint64_t x = 0;

    for (size_t i = 0; i < len && i < max; i++) {
        x |= (uint64_t) (p[i] & 0x7F) << (7 * i);
        if (p[i] < 0x80) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

static size_t
varint_len(uint64_t v)
{
    size_t n = 1;

    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

int
rr__request_put(rr_buf *b, uint32_t call_id, const rr_request_head *h,
                const uint8_t *payload, size_t len, uint32_t max_body)
{
    if (h->method_len > 255) { // rare: let protobuf-c size it
        Rawrpc__V1__RequestMeta m = RAWRPC__V1__REQUEST_META__INIT;
        char *name = strndup(h->method, h->method_len);
        if (name == NULL)
            return RR_ENOMEM;
        m.method = name;
        m.timeout_us = h->timeout_us;
        int rv = rr__call_put_raw(b, RR_FRAME_REQUEST, call_id, &m.base,
                                  payload, len, max_body);
        free(name);
        return rv;
    }
    // Field order and minimal varints, as protobuf-c writes them; proto3
    // leaves out empty and zero fields.  Written straight into the output.
    size_t meta_len = 0;
    if (h->method_len > 0)
        meta_len += 1 + varint_len(h->method_len) + h->method_len;
    if (h->timeout_us > 0)
        meta_len += 1 + varint_len(h->timeout_us);
    uint8_t *p;
    int rv =
        call_start(b, RR_FRAME_REQUEST, call_id, meta_len, len, max_body, &p);
    if (rv != RR_OK)
        return rv;
    size_t n = 0;
    if (h->method_len > 0) {
        p[n++] = TAG_METHOD;
        n += varint_put(p + n, h->method_len);
        memcpy(p + n, h->method, h->method_len);
        n += h->method_len;
    }
    if (h->timeout_us > 0) {
        p[n++] = TAG_TIMEOUT;
        n += varint_put(p + n, h->timeout_us);
    }
    if (len > 0)
        memcpy(p + n, payload, len);
    rr__buf_commit(b, RR_FRAME_HEADER_SIZE + meta_len + len);
    return RR_OK;
}

bool
rr__request_head_decode(const uint8_t *p, size_t len, rr_request_head *h)
{
    bool has_method = false, has_timeout = false;
    size_t i = 0;

    h->method = "";
    h->method_len = 0;
    h->timeout_us = 0;
    while (i < len) {
        uint8_t tag = p[i++];
        uint64_t v;
        // protobuf-c reads a length in at most 5 bytes (found by fuzz_meta:
        // a zero length padded to 9 bytes was taken here, refused there).
        size_t n = varint_get(p + i, len - i, tag == TAG_METHOD ? 5 : 9, &v);
        if (n == 0)
            return false;
        i += n;
        if (tag == TAG_METHOD && !has_method) {
            if (v > len - i || memchr(p + i, 0, (size_t) v) != NULL)
                return false;
            h->method = (const char *) p + i;
            h->method_len = (size_t) v;
            i += (size_t) v;
            has_method = true;
        } else if (tag == TAG_TIMEOUT && !has_timeout) {
            h->timeout_us = v;
            has_timeout = true;
        } else {
            return false;
        }
    }
    return true;
}

bool
rr__request_head_match(const uint8_t *p, size_t len, const char *name,
                       size_t name_len, uint64_t *timeout_us)
{
    size_t n = 2 + name_len; // tag, one-byte length, name
    uint64_t v = 0;

    if (name_len == 0 || name_len >= 0x80 || len < n || p[0] != TAG_METHOD ||
        p[1] != name_len || memcmp(p + 2, name, name_len) != 0)
        return false;
    if (n < len) { // then only the timeout, read as the decoder reads it
        if (p[n] != TAG_TIMEOUT)
            return false;
        size_t k = varint_get(p + n + 1, len - n - 1, 9, &v);
        if (k == 0 || n + 1 + k != len)
            return false;
    }
    *timeout_us = v;
    return true;
}

// Skips one field's value of wire type wt at p[0, len); returns the bytes
// it takes, or 0 when they are cut short or the type is a group.
static size_t
field_skip(const uint8_t *p, size_t len, unsigned wt)
{
    uint64_t v;
    size_t n;

    switch (wt) {
    case 0: // varint
        return varint_get(p, len, 10, &v);
    case 1: // 64-bit
        return len >= 8 ? 8 : 0;
    case 2: // length-delimited
        n = varint_get(p, len, 5, &v);
        return n != 0 && v <= len - n ? n + (size_t) v : 0;
    case 5: // 32-bit
        return len >= 4 ? 4 : 0;
    default:
        return 0;
    }
}

bool
rr__request_meta_method(const uint8_t *p, size_t len, const char **name,
                        size_t *name_len)
{
    *name = "";
    *name_len = 0;
    for (size_t i = 0; i < len;) {
        uint64_t tag;
        size_t n = varint_get(p + i, len - i, 5, &tag);
        if (n == 0)
            return false;
        i += n;
        if (tag == TAG_METHOD) {
            uint64_t v;
            size_t k = varint_get(p + i, len - i, 5, &v);
            if (k == 0 || v > len - i - k)
                return false;
            *name = (const char *) p + i + k;
            *name_len = (size_t) v;
            i += k + (size_t) v;
            continue;
        }
        size_t skip = field_skip(p + i, len - i, (unsigned) (tag & 7));
        if (skip == 0)
            return false;
        i += skip;
    }
    return true;
}

size_t
rr__response_message_room(uint32_t status, size_t limit)
{
    size_t fixed = 1 + varint_len(status) + 1; // status, the message's tag

    if (limit < fixed + 2)
        return 0;
    size_t m = limit - fixed - 1;
    while (m > 0 && fixed + varint_len(m) + m > limit)
        m--;
    return m;
}

// An allocator in front of the caller's (NULL: malloc and free, as
// protobuf-c's default) that remembers a failure: protobuf-c answers NULL
// both for bytes that do not parse and for memory it could not get.
typedef struct unpack_watch {
    ProtobufCAllocator self;
    ProtobufCAllocator *inner;
    bool failed;
} unpack_watch;

static void *
watch_alloc(void *data, size_t n)
{
    unpack_watch *w = data;
    void *p = w->inner != NULL ? w->inner->alloc(w->inner->allocator_data, n)
                               : malloc(n);

    if (p == NULL)
        w->failed = true;
    return p;
}

static void
watch_free(void *data, void *p)
{
    unpack_watch *w = data;

    if (w->inner != NULL)
        w->inner->free(w->inner->allocator_data, p);
    else
        free(p);
}

int
rr__unpack(const ProtobufCMessageDescriptor *d, ProtobufCAllocator *a,
           size_t len, const uint8_t *data, ProtobufCMessage **out)
{
    rr_arena *arena = rr__arena_of(a);

    if (arena != NULL) // the arena says whether memory ran out
        return rr__unpack_arena(d, arena, len, data, out);
    unpack_watch w;

    w.self.alloc = watch_alloc;
    w.self.free = watch_free;
    w.self.allocator_data = &w;
    w.inner = a;
    w.failed = false;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &w.self, len, data);
    if (m == NULL)
        return w.failed ? RR_ENOMEM : RR_EPROTO;
    *out = m;
    return RR_OK;
}

int
rr__meta_unpack(const ProtobufCMessageDescriptor *d, const rr_frame *f,
                ProtobufCAllocator *a, ProtobufCMessage **out)
{
    return rr__unpack(d, a, f->meta_len, f->body, out);
}
