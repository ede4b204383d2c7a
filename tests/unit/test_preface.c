// SPDX-License-Identifier: MIT
//
// test_preface.c -- the connection preface and SETTINGS.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "codec/buf.h"
#include "codec/frame.h"
#include "guard.h"
#include "codec/preface.h"
#include "rawrpc/rawrpc.h"
#include "vectors.h"

static void
test_preface_encode_vector(void **state)
{
    (void) state;
    rr_buf b;

    rr__buf_init(&b, 64);
    assert_int_equal(rr__preface_put(&b, RAWRPC_PROTOCOL_VERSION), RR_OK);
    assert_int_equal(rr__buf_size(&b), sizeof(vec_preface));
    assert_memory_equal(rr__buf_data(&b), vec_preface, sizeof(vec_preface));
    rr__buf_fini(&b);
}

static void
test_preface_every_prefix_waits(void **state)
{
    (void) state;

    for (size_t p = 0; p <= sizeof(vec_preface); p++) {
        rr_guard g;
        uint16_t v = 0;
        assert_int_equal(rr_guard_copy(&g, vec_preface, p), 0);
        ssize_t n = rr__preface_decode(g.data, p, &v);
        if (p < sizeof(vec_preface)) {
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(n, RR_PREFACE_SIZE);
            assert_int_equal(v, 1);
        }
        rr_guard_free(&g);
    }
}

static void
test_preface_bad_byte_fails_at_once(void **state)
{
    (void) state;

    // Corrupt each magic byte in turn: the decoder must fail as soon as
    // that byte is present, and wait while it is not.
    for (size_t bad = 0; bad < RR_MAGIC_SIZE; bad++) {
        uint8_t p[RR_PREFACE_SIZE];
        memcpy(p, vec_preface, sizeof(p));
        p[bad] ^= 0x20;
        for (size_t len = 0; len <= sizeof(p); len++) {
            uint16_t v;
            ssize_t n = rr__preface_decode(p, len, &v);
            assert_int_equal(n, len <= bad ? 0 : RR_EPREFACE);
        }
    }
}

static void
test_preface_http_is_rejected_on_first_byte(void **state)
{
    (void) state;
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    uint16_t v;
    char msg[160];

    assert_int_equal(rr__preface_decode((const uint8_t *) http, 1, &v),
                     RR_EPREFACE);
    rr__preface_describe((const uint8_t *) http, strlen(http), msg,
                         sizeof(msg));
    assert_string_equal(msg, "peer is not speaking rawrpc: byte 0 is 0x47 "
                             "where the magic has 0x89 (received \"GET / "
                             "HT\")");
}

static void
test_preface_versions(void **state)
{
    (void) state;
    uint8_t p[RR_PREFACE_SIZE];
    uint16_t v = 0;
    char msg[160];

    memcpy(p, vec_preface, sizeof(p));
    p[8] = 0;
    p[9] = 0; // version 0 is invalid
    assert_int_equal(rr__preface_decode(p, sizeof(p), &v), RR_EVERSION);
    rr__preface_describe(p, sizeof(p), msg, sizeof(msg));
    assert_string_equal(msg, "peer speaks protocol version 0; this side "
                             "speaks 1 and up");

    p[9] = 7;     // a newer peer is accepted; the connection speaks min(1, 7)
    p[10] = 0xAB; // reserved bytes are ignored
    assert_int_equal(rr__preface_decode(p, sizeof(p), &v), RR_PREFACE_SIZE);
    assert_int_equal(v, 7);
}

static void
test_settings_encode_vector(void **state)
{
    (void) state;
    rr_buf b;
    const rr_settings s = {4194304, 1024, 5000, 8192};

    rr__buf_init(&b, 64);
    assert_int_equal(rr__settings_put(&b, &s), RR_OK);
    assert_int_equal(rr__buf_size(&b), sizeof(vec_settings));
    assert_memory_equal(rr__buf_data(&b), vec_settings, sizeof(vec_settings));
    rr__buf_fini(&b);
}

static void
test_settings_decode_vector(void **state)
{
    (void) state;
    rr_frame f;
    rr_settings s;

    assert_int_equal(
        rr__frame_decode(vec_settings, sizeof(vec_settings), 4096, &f),
        sizeof(vec_settings));
    rr__settings_init(&s);
    assert_int_equal(rr__settings_decode(&f, &s, NULL, 0), RR_OK);
    assert_int_equal(s.max_frame_size, 4194304);
    assert_int_equal(s.max_concurrent_calls, 1024);
    assert_int_equal(s.heartbeat_interval_ms, 5000);
    assert_int_equal(s.max_metadata_size, 8192);
}

// Builds a SETTINGS frame from (id, value) pairs and decodes it into *s.
static int
settings_from(const uint32_t (*pairs)[2], size_t n, rr_settings *s, char *msg,
              size_t msgsz)
{
    uint8_t body[8 * RR_SETTING_ENTRY_SIZE];
    rr_buf b;
    rr_frame f;

    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = body + i * RR_SETTING_ENTRY_SIZE;
        e[0] = (uint8_t) (pairs[i][0] >> 8);
        e[1] = (uint8_t) pairs[i][0];
        e[2] = (uint8_t) (pairs[i][1] >> 24);
        e[3] = (uint8_t) (pairs[i][1] >> 16);
        e[4] = (uint8_t) (pairs[i][1] >> 8);
        e[5] = (uint8_t) pairs[i][1];
    }
    rr__buf_init(&b, 256);
    assert_int_equal(rr__frame_put(&b, RR_FRAME_SETTINGS, 0, body,
                                   n * RR_SETTING_ENTRY_SIZE),
                     RR_OK);
    assert_true(rr__frame_decode(rr__buf_data(&b), rr__buf_size(&b), 4096, &f) >
                0);
    int rv = rr__settings_decode(&f, s, msg, msgsz);
    rr__buf_fini(&b);
    return rv;
}

static void
test_settings_defaults_unknown_and_repeats(void **state)
{
    (void) state;
    rr_settings s;

    // Empty SETTINGS: every value keeps its initial value.
    rr__settings_init(&s);
    assert_int_equal(settings_from(NULL, 0, &s, NULL, 0), RR_OK);
    assert_int_equal(s.max_frame_size, RR_DEFAULT_MAX_FRAME_SIZE);
    assert_int_equal(s.max_concurrent_calls, 100);
    assert_int_equal(s.heartbeat_interval_ms, 0);
    assert_int_equal(s.max_metadata_size, 8192);

    // Unknown ids are ignored; the last of a repeated id wins.
    const uint32_t pairs[][2] = {{99, 1}, {2, 5}, {0, 0}, {2, 7}, {3, 250}};
    assert_int_equal(settings_from(pairs, 5, &s, NULL, 0), RR_OK);
    assert_int_equal(s.max_concurrent_calls, 7);
    assert_int_equal(s.heartbeat_interval_ms, 250);
    assert_int_equal(s.max_frame_size, RR_DEFAULT_MAX_FRAME_SIZE);
}

static void
test_settings_out_of_range(void **state)
{
    (void) state;
    const uint32_t bad[][2] = {
        {RR_SETTING_MAX_FRAME_SIZE, 1023},
        {RR_SETTING_MAX_CONCURRENT_CALLS, 0},
        {RR_SETTING_MAX_METADATA_SIZE, 65536},
    };
    const char *msgs[] = {
        "SETTINGS id 1 has value 1023, outside its valid range",
        "SETTINGS id 2 has value 0, outside its valid range",
        "SETTINGS id 4 has value 65536, outside its valid range",
    };

    for (size_t i = 0; i < 3; i++) {
        rr_settings s;
        char msg[128];
        rr__settings_init(&s);
        // A valid entry before the bad one must not be applied either.
        const uint32_t pairs[][2] = {{RR_SETTING_HEARTBEAT_INTERVAL_MS, 9},
                                     {bad[i][0], bad[i][1]}};
        assert_int_equal(settings_from(pairs, 2, &s, msg, sizeof(msg)),
                         RR_EPROTO);
        assert_string_equal(msg, msgs[i]);
        assert_int_equal(s.heartbeat_interval_ms, 0);
    }

    // The bounds themselves are valid.
    rr_settings s;
    rr__settings_init(&s);
    const uint32_t edge[][2] = {{RR_SETTING_MAX_FRAME_SIZE, 1024},
                                {RR_SETTING_MAX_CONCURRENT_CALLS, 1},
                                {RR_SETTING_MAX_METADATA_SIZE, 65535}};
    assert_int_equal(settings_from(edge, 3, &s, NULL, 0), RR_OK);
    assert_int_equal(s.max_frame_size, 1024);
    assert_int_equal(s.max_metadata_size, 65535);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preface_encode_vector),
        cmocka_unit_test(test_preface_every_prefix_waits),
        cmocka_unit_test(test_preface_bad_byte_fails_at_once),
        cmocka_unit_test(test_preface_http_is_rejected_on_first_byte),
        cmocka_unit_test(test_preface_versions),
        cmocka_unit_test(test_settings_encode_vector),
        cmocka_unit_test(test_settings_decode_vector),
        cmocka_unit_test(test_settings_defaults_unknown_and_repeats),
        cmocka_unit_test(test_settings_out_of_range),
    };
    return cmocka_run_group_tests_name("preface", tests, NULL, NULL);
}
