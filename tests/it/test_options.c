// SPDX-License-Identifier: MIT
//
// test_options.c -- option structs that grow without breaking the ABI:
// struct_size as compiled, 0 for the first layout, a newer program's
// options refused with a reason.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void
test_options_server_sizes(void **state)
{
    fixture *fx = *state;
    rr_server_opts o;
    rr_server *srv;

    rr_server_opts_init(&o);
    assert_int_equal(o.struct_size, sizeof(o));
    assert_int_equal(rr_server_new(&srv, fx->loop, &o), RR_OK);
    rr_server_free(srv);
    o.struct_size = 0; // the first layout
    assert_int_equal(rr_server_new(&srv, fx->loop, &o), RR_OK);
    rr_server_free(srv);
    o.struct_size = sizeof(o) + 8; // from a newer rawrpc.h
    assert_int_equal(rr_server_new(&srv, fx->loop, &o), RR_EINVAL);
    assert_non_null(strstr(rr_last_error(), "rr_server_opts_init"));
    o.struct_size = sizeof(size_t); // shorter than any layout
    assert_int_equal(rr_server_new(&srv, fx->loop, &o), RR_EINVAL);
}

static void
test_options_channel_sizes(void **state)
{
    fixture *fx = *state;
    rr_channel_opts o;
    rr_channel *ch;

    rr_channel_opts_init(&o);
    assert_int_equal(o.struct_size, sizeof(o));
    assert_int_equal(rr_channel_new(&ch, fx->loop, fx->target, &o), RR_OK);
    rr_channel_free(ch);
    o.struct_size = sizeof(o) + 8;
    assert_int_equal(rr_channel_new(&ch, fx->loop, fx->target, &o), RR_EINVAL);
    assert_non_null(strstr(rr_last_error(), "rr_channel_opts_init"));
}

static void
never_cb(const rr_result *res, void *arg)
{
    (void) res;
    (void) arg;
    fail_msg("a refused call called back");
}

// A zeroed rr_call_opts is the defaults; a sized one works; one from a
// newer header is refused before anything happens.
static void
test_options_call_sizes(void **state)
{
    fixture *fx = *state;
    outcome a, b;
    rr_call_opts zero = {.struct_size = 0, .timeout = 5};
    rr_call_opts sized = {.struct_size = sizeof(rr_call_opts), .timeout = 5};
    rr_call_opts newer = {.struct_size = sizeof(rr_call_opts) + 8};
    Rrtest__Echo req = RRTEST__ECHO__INIT;

    assert_int_equal(fx_call(fx, M_ECHO, "zero", &zero, &a), RR_OK);
    assert_int_equal(fx_call(fx, M_ECHO, "sized", &sized, &b), RR_OK);
    fx_wait(fx, &a);
    fx_wait(fx, &b);
    assert_int_equal(a.status, RR_STATUS_OK);
    assert_int_equal(b.status, RR_STATUS_OK);
    req.text = (char *) "newer";
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     &newer, never_cb, NULL, NULL),
                     RR_EINVAL);
    fx_run_for(fx, 0.02);
}

int
main(void)
{
#define T(name)                                                                \
    cmocka_unit_test_setup_teardown(name, fx_group_setup, fx_group_teardown)
    const struct CMUnitTest tests[] = {
        T(test_options_server_sizes),
        T(test_options_channel_sizes),
        T(test_options_call_sizes),
    };
#undef T
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
