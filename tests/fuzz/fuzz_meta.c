// SPDX-License-Identifier: MIT
//
// fuzz_meta.c -- the metadata decoders: arbitrary bytes as the metadata of
// a REQUEST and of a RESPONSE.  What unpacks must re-encode into a frame
// that decodes again to the same metadata size and unpacks again.  The
// fast request-head decoder must agree with protobuf-c on whatever it
// accepts, and its encoder must write what protobuf-c writes; the
// known-name shortcut must agree with the fast decoder.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/buf.h"
#include "codec/frame.h"
#include "codec/meta.h"
#include "rawrpc/rawrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Whether m, or one of its metadata entries, kept unknown fields.
static int
has_unknown_fields(const ProtobufCMessage *m)
{
    size_t n;
    Rawrpc__V1__MetadataEntry **e;

    if (m->descriptor == &rawrpc__v1__request_meta__descriptor) {
        n = ((const Rawrpc__V1__RequestMeta *) m)->n_metadata;
        e = ((const Rawrpc__V1__RequestMeta *) m)->metadata;
    } else {
        n = ((const Rawrpc__V1__ResponseMeta *) m)->n_metadata;
        e = ((const Rawrpc__V1__ResponseMeta *) m)->metadata;
    }
    if (m->n_unknown_fields != 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        if (e[i]->base.n_unknown_fields != 0)
            return 1;
    }
    return 0;
}

static void
meta_round_trip(const ProtobufCMessageDescriptor *d, uint8_t type,
                const uint8_t *data, size_t size)
{
    rr_frame f = {.length = (uint32_t) size,
                  .type = type,
                  .meta_len = (uint16_t) size,
                  .call_id = 1,
                  .body = data};
    ProtobufCMessage *m;

    if (rr__meta_unpack(d, &f, NULL, &m) != RR_OK)
        return;

    rr_buf b;
    rr__buf_init(&b, 1 << 20);
    int rv = rr__call_put(&b, type, 1, m, NULL, 1 << 20);
    if (rv == RR_OK) {
        rr_frame g;
        ssize_t n =
            rr__frame_decode(rr__buf_data(&b), rr__buf_size(&b), 1 << 20, &g);
        if (n != (ssize_t) rr__buf_size(&b) || g.meta_len != g.length)
            abort();
        // What we encoded must decode.  Unknown fields are exempt:
        // protobuf-c 1.4.1 accepts a non-minimal two-byte tag 0 ("80 00")
        // as an unknown field, re-emits it as "00", and then rejects that.
        // rawrpc never re-encodes metadata it received, so only messages
        // without unknown fields are held to the round trip.
        ProtobufCMessage *again;
        if (rr__meta_unpack(d, &g, NULL, &again) == RR_OK)
            protobuf_c_message_free_unpacked(again, NULL);
        else if (!has_unknown_fields(m))
            abort();
    } else if (rv != RR_EMSGSIZE) {
        abort();
    }
    rr__buf_fini(&b);
    protobuf_c_message_free_unpacked(m, NULL);
}

// What the fast path takes, protobuf-c reads the same way; re-encoded by
// the fast encoder, it is byte for byte protobuf-c's encoding.
static void
head_agrees(const uint8_t *data, size_t size)
{
    rr_request_head h;

    if (!rr__request_head_decode(data, size, &h))
        return;
    Rawrpc__V1__RequestMeta *m =
        rawrpc__v1__request_meta__unpack(NULL, size, data);
    if (m == NULL || strlen(m->method) != h.method_len ||
        memcmp(m->method, h.method, h.method_len) != 0 ||
        m->timeout_us != h.timeout_us)
        abort();
    rr_buf fast, slow;
    rr__buf_init(&fast, 1 << 20);
    rr__buf_init(&slow, 1 << 20);
    if (rr__request_put(&fast, 1, &h, NULL, 0, 1 << 20) != RR_OK ||
        rr__call_put(&slow, RR_FRAME_REQUEST, 1, &m->base, NULL, 1 << 20) !=
            RR_OK ||
        rr__buf_size(&fast) != rr__buf_size(&slow) ||
        memcmp(rr__buf_data(&fast), rr__buf_data(&slow), rr__buf_size(&fast)) !=
            0)
        abort();
    rr__buf_fini(&fast);
    rr__buf_fini(&slow);
    rawrpc__v1__request_meta__free_unpacked(m, NULL);
}

// Where the known-name shortcut takes the bytes, the decoder reads that
// name and the same timeout.
static void
match_agrees(const uint8_t *data, size_t size, const char *name, size_t len)
{
    uint64_t t;
    rr_request_head h;

    if (!rr__request_head_match(data, size, name, len, &t))
        return;
    if (!rr__request_head_decode(data, size, &h) || h.method_len != len ||
        memcmp(h.method, name, len) != 0 || h.timeout_us != t)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > RR_META_MAX)
        return 0; // meta_len cannot express more
    meta_round_trip(&rawrpc__v1__request_meta__descriptor, RR_FRAME_REQUEST,
                    data, size);
    head_agrees(data, size);
    match_agrees(data, size, "/rawrpc.echo.Echo/Echo", 22);
    rr_request_head h; // and the name the decoder itself read, if any
    if (rr__request_head_decode(data, size, &h) && h.method_len > 0 &&
        memchr(h.method, 0, h.method_len) == NULL) {
        char name[128];
        if (h.method_len < sizeof(name)) {
            memcpy(name, h.method, h.method_len);
            match_agrees(data, size, name, h.method_len);
        }
    }
    meta_round_trip(&rawrpc__v1__response_meta__descriptor, RR_FRAME_RESPONSE,
                    data, size);
    return 0;
}
