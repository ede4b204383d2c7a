// SPDX-License-Identifier: MIT
//
// test_error.c -- version, error and status-code names.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rawrpc/rawrpc.h"

static void
test_error_strerror_names_every_code(void **state)
{
    (void) state;
    const char *seen[16] = {0};

    for (int e = RR_OK; e >= RR_EADDRNOTAVAIL; e--) {
        const char *s = rr_strerror(e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (int j = 0; j < -e; j++)
            assert_string_not_equal(s, seen[j]); // all distinct
        seen[-e] = s;
    }
    assert_string_equal(rr_strerror(RR_EADDRNOTAVAIL - 1), "unknown error");
    assert_string_equal(rr_strerror(42), "unknown error");
}

static void
test_error_status_names_match_grpc(void **state)
{
    (void) state;

    assert_string_equal(rr_status_name(RR_STATUS_OK), "OK");
    assert_string_equal(rr_status_name(4), "DEADLINE_EXCEEDED");
    assert_string_equal(rr_status_name(5), "NOT_FOUND");
    assert_string_equal(rr_status_name(8), "RESOURCE_EXHAUSTED");
    assert_string_equal(rr_status_name(12), "UNIMPLEMENTED");
    assert_string_equal(rr_status_name(14), "UNAVAILABLE");
    assert_string_equal(rr_status_name(16), "UNAUTHENTICATED");
    // Codes above 16 are received as UNKNOWN (PROTOCOL.md 5.3).
    assert_string_equal(rr_status_name(17), "UNKNOWN");
    assert_string_equal(rr_status_name(UINT32_MAX), "UNKNOWN");
}

static void
test_error_version_matches_header(void **state)
{
    (void) state;

    assert_string_equal(rr_version(), RAWRPC_VERSION_STRING);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_strerror_names_every_code),
        cmocka_unit_test(test_error_status_names_match_grpc),
        cmocka_unit_test(test_error_version_matches_header),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
