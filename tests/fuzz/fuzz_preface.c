// SPDX-License-Identifier: MIT
//
// fuzz_preface.c -- what a connection reads first: the preface, then its
// frames, exactly in the order a peer's bytes are consumed.

#include <stdint.h>
#include <stdlib.h>

#include "codec/frame.h"
#include "codec/preface.h"
#include "rawrpc/rawrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t version = 0;
    char msg[160];
    ssize_t n = rr__preface_decode(data, size, &version);

    if (n < 0) {
        rr__preface_describe(data, size, msg, sizeof(msg));
        return 0;
    }
    if (n == 0)
        return 0;
    if (n != RR_PREFACE_SIZE || version == 0)
        abort();

    // The first frame must be SETTINGS; decode it as a connection would.
    rr_frame f;
    n = rr__frame_decode(data + n, size - RR_PREFACE_SIZE,
                         RR_DEFAULT_MAX_FRAME_SIZE, &f);
    if (n > 0 && f.type == RR_FRAME_SETTINGS) {
        rr_settings s;
        rr__settings_init(&s);
        if (rr__settings_decode(&f, &s, msg, sizeof(msg)) == RR_OK &&
            (s.max_frame_size < RR_MIN_MAX_FRAME_SIZE ||
             s.max_concurrent_calls == 0 || s.max_metadata_size > 65535))
            abort(); // accepted a value outside its range
    }
    return 0;
}
