// SPDX-License-Identifier: MIT
//
// test_utf8.c -- well-formedness, escaping and cutting of UTF-8 text.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "codec/utf8.h"

#define U(s) ((const uint8_t *) (s)), (sizeof(s) - 1)

static void
test_utf8_valid_follows_rfc3629(void **state)
{
    (void) state;
    assert_true(rr__utf8_valid(U("")));
    assert_true(rr__utf8_valid(U("plain ascii")));
    assert_true(rr__utf8_valid(U("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")));
    assert_true(rr__utf8_valid(U("\xed\x9f\xbf")));     // U+D7FF
    assert_true(rr__utf8_valid(U("\xf4\x8f\xbf\xbf"))); // U+10FFFF
    assert_false(rr__utf8_valid(U("\xff\xfe")));
    assert_false(rr__utf8_valid(U("\xc0\xaf")));         // overlong '/'
    assert_false(rr__utf8_valid(U("\xe0\x80\xaf")));     // overlong
    assert_false(rr__utf8_valid(U("\xed\xa0\x80")));     // surrogate
    assert_false(rr__utf8_valid(U("\xf4\x90\x80\x80"))); // above U+10FFFF
    assert_false(rr__utf8_valid(U("\xc3")));             // cut short
    assert_false(rr__utf8_valid(U("a\xe2\x82")));
    assert_false(rr__utf8_valid(U("\x80")));
}

static void
test_utf8_escape_makes_wellformed_text(void **state)
{
    (void) state;
    char out[64];

    assert_int_equal(rr__utf8_escape(out, sizeof(out), U("/x/\xff\xfe"), true),
                     11);
    assert_string_equal(out, "/x/\\xff\\xfe");
    rr__utf8_escape(out, sizeof(out),
                    U("a\x00"
                      "b\n\xc3\xa9"),
                    true);
    assert_string_equal(out, "a\\x00b\\x0a\xc3\xa9");
    rr__utf8_escape(out, sizeof(out), U("line\nbreak \xc3("), false);
    assert_string_equal(out, "line\nbreak \\xc3(");
    // Every output is well-formed, whatever the input.
    for (unsigned b = 0; b < 256; b++) {
        uint8_t in[3] = {(uint8_t) b, 0x80, (uint8_t) ~b};
        size_t n = rr__utf8_escape(out, sizeof(out), in, sizeof(in), false);
        assert_true(rr__utf8_valid((const uint8_t *) out, n));
    }
}

// The output stops before a character or escape that does not fit.
static void
test_utf8_escape_never_cuts_inside(void **state)
{
    (void) state;
    char out[8];

    assert_int_equal(rr__utf8_escape(out, 6, U("ab\xe2\x82\xac"), false), 5);
    assert_int_equal(rr__utf8_escape(out, 5, U("ab\xe2\x82\xac"), false), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(rr__utf8_escape(out, 6, U("a\xff"), false), 5);
    assert_int_equal(rr__utf8_escape(out, 5, U("a\xff"), false), 1);
    assert_string_equal(out, "a");
    assert_int_equal(rr__utf8_escape(out, 1, U("abc"), false), 0);
    assert_string_equal(out, "");
}

static void
test_utf8_cut_on_boundaries(void **state)
{
    (void) state;
    const char s[] = "a\xc3\xa9\xe2\x82\xac"; // a, e-acute, euro: 1+2+3

    assert_int_equal(rr__utf8_cut(s, 6, 6), 6);
    assert_int_equal(rr__utf8_cut(s, 6, 5), 3);
    assert_int_equal(rr__utf8_cut(s, 6, 4), 3);
    assert_int_equal(rr__utf8_cut(s, 6, 2), 1);
    assert_int_equal(rr__utf8_cut(s, 6, 0), 0);
    assert_int_equal(rr__utf8_cut(s, 6, 100), 6);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_follows_rfc3629),
        cmocka_unit_test(test_utf8_escape_makes_wellformed_text),
        cmocka_unit_test(test_utf8_escape_never_cuts_inside),
        cmocka_unit_test(test_utf8_cut_on_boundaries),
    };
    return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
