// SPDX-License-Identifier: MIT
//
// test_testkit.c -- rawrpc/testing.h: a handler that never completes its
// call is named (method and test) by rr_testkit_free, which fails the
// call (nothing leaks) and returns RR_EINVAL; a kit whose calls all
// completed frees with RR_OK.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "rawrpc/testing.h"
#include "testmsg.pb-c.h"

static const rr_method hold_method = {
    "/rrtest.Test/Hold", &rrtest__echo__descriptor, &rrtest__echo__descriptor};
static const rr_method echo_method = {
    "/rrtest.Test/Echo", &rrtest__echo__descriptor, &rrtest__echo__descriptor};

static void
h_forget(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) call;
    (void) req;
    *(bool *) arg = true; // and never completes it
}

static void
h_echo(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) arg;
    rr_call_reply(call, req);
}

static void
done_cb(const rr_result *res, void *arg)
{
    (void) res;
    *(bool *) arg = true;
}

static int
kit_run(bool forget)
{
    rr_testkit *kit;
    bool held = false, done = false;
    rr_handler_cb h[8] = {h_echo, h_forget};
    Rrtest__Echo req = RRTEST__ECHO__INIT;

    if (rr_testkit_new(&kit, NULL, NULL) != RR_OK ||
        rr_server_add_service(rr_testkit_server(kit), &rrtest__test__descriptor,
                              h, &held) != RR_OK)
        return 100;
    req.text = (char *) "x";
    rr_channel_call(rr_testkit_channel(kit),
                    forget ? &hold_method : &echo_method, &req.base, NULL,
                    done_cb, &done, NULL);
    rr_testkit_run_until(kit, forget ? &held : &done, 10);
    return -rr_testkit_free(kit);
}

static int
forgetting_test(void)
{
    return kit_run(true);
}

// Runs fn in a child with stderr into a pipe: its exit status, and what
// it wrote in out.
static int
child(int (*fn)(void), char *out, size_t n)
{
    int p[2];

    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        _exit(fn());
    }
    close(p[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(p[0], out + got, n - 1 - got)) > 0)
        got += (size_t) r;
    out[got] = '\0';
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void
test_testkit_names_the_unfinished_call(void **state)
{
    (void) state;
    char err[2048];

    assert_int_equal(child(forgetting_test, err, sizeof(err)), -RR_EINVAL);
    if (strstr(err, "in kit_run, the handler of /rrtest.Test/Hold never "
                    "completed its call") == NULL)
        fail_msg("stderr: %s", err);
}

static void
test_testkit_clean_kit_frees_ok(void **state)
{
    (void) state;
    assert_int_equal(kit_run(false), RR_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_testkit_names_the_unfinished_call),
        cmocka_unit_test(test_testkit_clean_kit_frees_ok),
    };
    return cmocka_run_group_tests_name("testkit", tests, NULL, NULL);
}
