// SPDX-License-Identifier: MIT
//
// fuzz_frame.c -- the frame decoder, and the SETTINGS and GOAWAY body
// parsers behind it, fed arbitrary bytes.
//
// The first input byte picks the size limit, so the fuzzer explores the
// limit checks as well as the layouts.  Invariants checked: a frame never
// extends past the input; an accepted header passes rr__frame_check; an
// error from the decoder is the same error rr__frame_check describes; the
// header re-encodes to the bytes it came from.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/frame.h"
#include "codec/preface.h"
#include "rawrpc/rawrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
    if (!ok)
        abort();
}

static void
frame_use(const rr_frame *f)
{
    if (f->type == RR_FRAME_SETTINGS) {
        rr_settings s;
        char msg[128];
        rr__settings_init(&s);
        rr__settings_decode(f, &s, msg, sizeof(msg));
    } else if (f->type == RR_FRAME_GOAWAY) {
        rr_goaway g;
        rr__goaway_parse(f, &g);
        check(g.message + g.message_len == (const char *) f->body + f->length);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint32_t max = (uint32_t) 1024 << (data[0] % 16);
    const uint8_t *p = data + 1;
    size_t left = size - 1;

    for (;;) {
        rr_frame f;
        ssize_t n = rr__frame_decode(p, left, max, &f);
        if (n == 0)
            break;
        if (n < 0) {
            char msg[128];
            check(rr__frame_check(&f, max, msg, sizeof(msg)) == n);
            check(msg[0] != '\0');
            break;
        }
        check((size_t) n <= left);
        check(f.body == p + RR_FRAME_HEADER_SIZE);
        check(f.body + f.length == p + n);
        check(rr__frame_check(&f, max, NULL, 0) == RR_OK);

        uint8_t h[RR_FRAME_HEADER_SIZE];
        rr__frame_header_put(h, &f);
        check(memcmp(h, p, sizeof(h)) == 0);
        frame_use(&f);
        p += n;
        left -= (size_t) n;
    }
    return 0;
}
