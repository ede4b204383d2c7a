// SPDX-License-Identifier: MIT
//
// frame.c -- frame header decode, validation and encode; see frame.h.
//
// The per-type rules of section 3 live in one table, so the decoder, the
// error messages and the spec's table cannot drift apart.  The one
// shortcut, for REQUEST and RESPONSE in rr__frame_decode, restates their
// row of the table; fuzz_frame holds every header it accepts to
// rr__frame_check.

#include "codec/frame.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "codec/byteorder.h"
#include "rawrpc/rawrpc.h"

// What section 3 demands of one frame type's header.
typedef struct frame_rule {
    const char *name;
    bool is_call;     // call_id must be != 0; otherwise it must be 0
    bool has_meta;    // meta_len may be != 0
    uint32_t min_len; // body size bounds
    uint32_t max_len;
    uint32_t multiple; // body size must be a multiple of this (the
                       // division is skipped for 1: it showed per frame)
} frame_rule;

static const frame_rule frame_rules[] = {
    [RR_FRAME_SETTINGS] = {"SETTINGS", false, false, 0, UINT32_MAX,
                           RR_SETTING_ENTRY_SIZE},
    [RR_FRAME_REQUEST] = {"REQUEST", true, true, 0, UINT32_MAX, 1},
    [RR_FRAME_RESPONSE] = {"RESPONSE", true, true, 0, UINT32_MAX, 1},
    [RR_FRAME_CANCEL] = {"CANCEL", true, false, 0, 0, 1},
    [RR_FRAME_PING] = {"PING", false, false, RR_PING_SIZE, RR_PING_SIZE, 1},
    [RR_FRAME_PONG] = {"PONG", false, false, RR_PING_SIZE, RR_PING_SIZE, 1},
    [RR_FRAME_GOAWAY] = {"GOAWAY", false, false, RR_GOAWAY_FIXED_SIZE,
                         UINT32_MAX, 1},
};

#define N_RULES (sizeof(frame_rules) / sizeof(frame_rules[0]))

static const frame_rule *
frame_rule_of(uint8_t type)
{
    if (type >= N_RULES || frame_rules[type].name == NULL)
        return NULL;
    return &frame_rules[type];
}

const char *
rr__frame_type_name(uint8_t type)
{
    const frame_rule *r = frame_rule_of(type);

    return r != NULL ? r->name : "unknown";
}

const char *
rr__goaway_code_name(uint32_t code)
{
    static const char *const names[] = {
        "NO_ERROR",          "PROTOCOL_ERROR",      "FRAME_TOO_LARGE",
        "BAD_PREFACE",       "UNSUPPORTED_VERSION", "SETTINGS_ERROR",
        "HANDSHAKE_TIMEOUT", "HEARTBEAT_TIMEOUT",   "ENHANCE_YOUR_CALM",
        "INTERNAL_ERROR",
    };

    if (code >= sizeof(names) / sizeof(names[0]))
        return "PROTOCOL_ERROR";
    return names[code];
}

// Formats msg (when wanted) and returns rv, so each rule is one statement.
__attribute__((format(printf, 4, 5))) static int
check_fail(int rv, char *msg, size_t msgsz, const char *fmt, ...)
{
    if (msg == NULL || msgsz == 0)
        return rv;

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msgsz, fmt, ap);
    va_end(ap);
    return rv;
}

int
rr__frame_check(const rr_frame *f, uint32_t max_body, char *msg, size_t msgsz)
{
    if (f->length > max_body)
        return check_fail(RR_EMSGSIZE, msg, msgsz,
                          "frame of %" PRIu32 " bytes exceeds the %" PRIu32
                          "-byte limit",
                          f->length, max_body);
    if (f->type >= RR_FRAME_EXT_MIN)
        return RR_OK; // extensions are skipped whole, unread

    const frame_rule *r = frame_rule_of(f->type);
    if (r == NULL)
        return check_fail(RR_EPROTO, msg, msgsz, "unknown frame type 0x%02x",
                          (unsigned) f->type);
    if (r->is_call && f->call_id == 0)
        return check_fail(RR_EPROTO, msg, msgsz, "%s frame with call ID 0",
                          r->name);
    if (!r->is_call && f->call_id != 0)
        return check_fail(RR_EPROTO, msg, msgsz,
                          "%s frame with call ID %" PRIu32
                          "; connection frames carry 0",
                          r->name, f->call_id);
    if (!r->has_meta && f->meta_len != 0)
        return check_fail(RR_EPROTO, msg, msgsz,
                          "%s frame with %u metadata bytes; it carries none",
                          r->name, (unsigned) f->meta_len);
    if (f->meta_len > f->length)
        return check_fail(RR_EPROTO, msg, msgsz,
                          "metadata of %u bytes exceeds the %" PRIu32
                          "-byte frame body",
                          (unsigned) f->meta_len, f->length);
    if (f->length < r->min_len || f->length > r->max_len ||
        (r->multiple > 1 && f->length % r->multiple != 0))
        return check_fail(RR_EPROTO, msg, msgsz,
                          "%s frame with a body of %" PRIu32 " bytes", r->name,
                          f->length);
    return RR_OK;
}

ssize_t
rr__frame_decode(const uint8_t *buf, size_t len, uint32_t max_body,
                 rr_frame *out)
{
    if (len < RR_FRAME_HEADER_SIZE)
        return 0;
    out->length = rr__get_be32(buf);
    out->type = buf[4];
    out->flags = buf[5];
    out->meta_len = rr__get_be16(buf + 6);
    out->call_id = rr__get_be32(buf + 8);

    // A REQUEST or RESPONSE, one per call, meets the rules of section 3
    // with these four comparisons; other frames go through the table.
    bool call_ok =
        (out->type == RR_FRAME_REQUEST || out->type == RR_FRAME_RESPONSE) &&
        out->call_id != 0 && out->meta_len <= out->length &&
        out->length <= max_body;
    if (!call_ok) {
        int rv = rr__frame_check(out, max_body, NULL, 0);
        if (rv != RR_OK)
            return rv;
    }
    // length <= max_body <= UINT32_MAX, so the sum cannot overflow size_t
    // on the 64-bit and 32-bit targets rawrpc supports.
    if (len - RR_FRAME_HEADER_SIZE < out->length)
        return 0;
    out->body = buf + RR_FRAME_HEADER_SIZE;
    return (ssize_t) (RR_FRAME_HEADER_SIZE + (size_t) out->length);
}

int
rr__frame_start(rr_buf *b, const rr_frame *h, uint8_t **body)
{
    return rr__frame_start_inline(b, h, body);
}

int
rr__frame_put(rr_buf *b, uint8_t type, uint32_t call_id, const void *body,
              size_t len)
{
    if (len > UINT32_MAX)
        return RR_EMSGSIZE;

    rr_frame f = {.length = (uint32_t) len, .type = type, .call_id = call_id};
    uint8_t *p;
    int rv = rr__frame_start(b, &f, &p);
    if (rv != RR_OK)
        return rv;
    if (len > 0)
        memcpy(p, body, len);
    rr__buf_commit(b, RR_FRAME_HEADER_SIZE + len);
    return RR_OK;
}

int
rr__frame_put_ping(rr_buf *b, uint8_t type, const uint8_t *data)
{
    return rr__frame_put(b, type, 0, data, RR_PING_SIZE);
}

int
rr__frame_put_cancel(rr_buf *b, uint32_t call_id)
{
    return rr__frame_put(b, RR_FRAME_CANCEL, call_id, NULL, 0);
}

int
rr__frame_put_goaway(rr_buf *b, uint32_t last_call_id, uint32_t code,
                     const char *message)
{
    size_t mlen = message != NULL ? strlen(message) : 0;

    if (mlen > UINT32_MAX - RR_GOAWAY_FIXED_SIZE)
        return RR_EMSGSIZE;

    size_t len = RR_GOAWAY_FIXED_SIZE + mlen;
    rr_frame f = {.length = (uint32_t) len, .type = RR_FRAME_GOAWAY};
    uint8_t *p;
    int rv = rr__frame_start(b, &f, &p);
    if (rv != RR_OK)
        return rv;
    rr__put_be32(p, last_call_id);
    rr__put_be32(p + 4, code);
    // The wire carries the text without its NUL: the length bounds it.
    if (mlen > 0) // NOLINTNEXTLINE(bugprone-not-null-terminated-result)
        memcpy(p + RR_GOAWAY_FIXED_SIZE, message, mlen);
    rr__buf_commit(b, RR_FRAME_HEADER_SIZE + len);
    return RR_OK;
}

void
rr__goaway_parse(const rr_frame *f, rr_goaway *out)
{
    out->last_call_id = rr__get_be32(f->body);
    out->code = rr__get_be32(f->body + 4);
    out->message = (const char *) f->body + RR_GOAWAY_FIXED_SIZE;
    out->message_len = f->length - RR_GOAWAY_FIXED_SIZE;
}
