// SPDX-License-Identifier: MIT
//
// preface.c -- connection preface and SETTINGS; see preface.h.

#include "codec/preface.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec/byteorder.h"
#include "rawrpc/rawrpc.h"

const uint8_t rr__magic[RR_MAGIC_SIZE] = {0x89, 'R',  'R',  'P',
                                          'C',  '\r', '\n', 0x1A};

int
rr__preface_put(rr_buf *b, uint16_t version)
{
    uint8_t p[RR_PREFACE_SIZE] = {0};

    memcpy(p, rr__magic, RR_MAGIC_SIZE);
    rr__put_be16(p + RR_MAGIC_SIZE, version);
    return rr__buf_append(b, p, sizeof(p));
}

// Returns the index of the first byte of buf that differs from the magic,
// or RR_MAGIC_SIZE if there is none among the bytes present.
static size_t
magic_mismatch(const uint8_t *buf, size_t len)
{
    size_t n = len < RR_MAGIC_SIZE ? len : RR_MAGIC_SIZE;

    for (size_t i = 0; i < n; i++) {
        if (buf[i] != rr__magic[i])
            return i;
    }
    return RR_MAGIC_SIZE;
}

ssize_t
rr__preface_decode(const uint8_t *buf, size_t len, uint16_t *version)
{
    if (magic_mismatch(buf, len) < RR_MAGIC_SIZE)
        return RR_EPREFACE;
    if (len < RR_PREFACE_SIZE)
        return 0;

    uint16_t v = rr__get_be16(buf + RR_MAGIC_SIZE);
    if (v == 0)
        return RR_EVERSION;
    *version = v;
    return RR_PREFACE_SIZE;
}

void
rr__preface_describe(const uint8_t *buf, size_t len, char *msg, size_t msgsz)
{
    size_t bad = magic_mismatch(buf, len);

    if (bad == RR_MAGIC_SIZE) {
        uint16_t v = len >= RR_PREFACE_SIZE ? rr__get_be16(buf + 8) : 0;
        snprintf(msg, msgsz,
                 "peer speaks protocol version %u; this side speaks 1 and "
                 "up",
                 (unsigned) v);
        return;
    }

    char seen[RR_MAGIC_SIZE + 1];
    size_t n = len < RR_MAGIC_SIZE ? len : RR_MAGIC_SIZE;
    for (size_t i = 0; i < n; i++)
        seen[i] = (char) (buf[i] >= 0x20 && buf[i] < 0x7F ? buf[i] : '.');
    seen[n] = '\0';
    snprintf(msg, msgsz,
             "peer is not speaking rawrpc: byte %zu is 0x%02x where the "
             "magic has 0x%02x (received \"%s\")",
             bad, (unsigned) buf[bad], (unsigned) rr__magic[bad], seen);
}

void
rr__settings_init(rr_settings *s)
{
    s->max_frame_size = RR_DEFAULT_MAX_FRAME_SIZE;
    s->max_concurrent_calls = RR_DEFAULT_MAX_CONCURRENT_CALLS;
    s->heartbeat_interval_ms = RR_DEFAULT_HEARTBEAT_INTERVAL_MS;
    s->max_metadata_size = RR_DEFAULT_MAX_METADATA_SIZE;
}

int
rr__settings_put(rr_buf *b, const rr_settings *s)
{
    const uint32_t values[] = {s->max_frame_size, s->max_concurrent_calls,
                               s->heartbeat_interval_ms, s->max_metadata_size};
    uint8_t body[4 * RR_SETTING_ENTRY_SIZE];

    for (size_t i = 0; i < 4; i++) {
        uint8_t *e = body + i * RR_SETTING_ENTRY_SIZE;
        rr__put_be16(e, (uint16_t) (i + 1)); // ids 1..4, in table order
        rr__put_be32(e + 2, values[i]);
    }
    return rr__frame_put(b, RR_FRAME_SETTINGS, 0, body, sizeof(body));
}

// Stores one entry into *s, or returns RR_EPROTO for a value out of range.
static int
settings_apply(rr_settings *s, uint16_t id, uint32_t v, char *msg, size_t msgsz)
{
    switch (id) {
    case RR_SETTING_MAX_FRAME_SIZE:
        if (v < RR_MIN_MAX_FRAME_SIZE)
            goto out_of_range;
        s->max_frame_size = v;
        break;
    case RR_SETTING_MAX_CONCURRENT_CALLS:
        if (v == 0)
            goto out_of_range;
        s->max_concurrent_calls = v;
        break;
    case RR_SETTING_HEARTBEAT_INTERVAL_MS:
        s->heartbeat_interval_ms = v;
        break;
    case RR_SETTING_MAX_METADATA_SIZE:
        if (v > RR_META_MAX)
            goto out_of_range;
        s->max_metadata_size = v;
        break;
    default:
        break; // unknown ids are ignored, so settings can be added
    }
    return RR_OK;

out_of_range:
    if (msg != NULL && msgsz > 0)
        snprintf(msg, msgsz,
                 "SETTINGS id %u has value %" PRIu32
                 ", outside its valid range",
                 (unsigned) id, v);
    return RR_EPROTO;
}

int
rr__settings_decode(const rr_frame *f, rr_settings *s, char *msg, size_t msgsz)
{
    rr_settings next = *s;

    for (uint32_t off = 0; off + RR_SETTING_ENTRY_SIZE <= f->length;
         off += RR_SETTING_ENTRY_SIZE) {
        const uint8_t *e = f->body + off;
        int rv = settings_apply(&next, rr__get_be16(e), rr__get_be32(e + 2),
                                msg, msgsz);
        if (rv != RR_OK)
            return rv;
    }
    *s = next;
    return RR_OK;
}
