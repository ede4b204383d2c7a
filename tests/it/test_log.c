// SPDX-License-Identifier: MIT
//
// test_log.c -- the log threshold from $RAWRPC_LOG (read once, at the
// first use, and overridden by rr_log_set), and the one line per call
// that the server and the channel log at RR_LOG_DEBUG.

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

#include "harness.h"
#include "util/log.h"

// Runs check() in a child whose environment has RAWRPC_LOG=value (NULL:
// unset), since the variable is read once per process.  The child's exit
// status is check's answer.
static int
in_child(const char *value, int (*check)(void))
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        if (value != NULL)
            setenv("RAWRPC_LOG", value, 1);
        else
            unsetenv("RAWRPC_LOG");
        _exit(check());
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

// The threshold as a number: 0 debug ... 3 error, 4 off.
static int
threshold(void)
{
    for (int l = RR_LOG_DEBUG; l < RR_LOG_OFF; l++) {
        if (rr__log_on((rr_log_level) l))
            return l;
    }
    return RR_LOG_OFF;
}

static int
debug_then_set(void)
{
    if (threshold() != RR_LOG_DEBUG)
        return 10;
    rr_log_set(NULL, NULL, RR_LOG_ERROR); // the program's choice wins
    return threshold();
}

static void
test_log_level_from_environment(void **state)
{
    (void) state;
    assert_int_equal(in_child(NULL, threshold), RR_LOG_WARN);
    assert_int_equal(in_child("debug", threshold), RR_LOG_DEBUG);
    assert_int_equal(in_child("INFO", threshold), RR_LOG_INFO);
    assert_int_equal(in_child("off", threshold), RR_LOG_OFF);
    assert_int_equal(in_child("loud", threshold), RR_LOG_WARN); // and says so
    assert_int_equal(in_child("debug", debug_then_set), RR_LOG_ERROR);
}

typedef struct lines {
    char server[256];
    char client[256];
    int n_server, n_client;
} lines;

static void
capture(rr_log_level level, const char *msg, void *arg)
{
    lines *l = arg;

    if (level != RR_LOG_DEBUG || strncmp(msg, "call ", 5) != 0)
        return;
    if (strstr(msg, " from ") != NULL) {
        snprintf(l->server, sizeof(l->server), "%s", msg);
        l->n_server++;
    } else if (strstr(msg, " to ") != NULL) {
        snprintf(l->client, sizeof(l->client), "%s", msg);
        l->n_client++;
    }
}

// At debug level each call is one line on each side; above it, none.
static void
test_log_one_line_per_call(void **state)
{
    fixture *fx = *state;
    lines l = {.n_server = 0};
    outcome o;

    rr_log_set(capture, &l, RR_LOG_DEBUG);
    fx_call(fx, M_ECHO, "hi", NULL, &o);
    fx_wait(fx, &o);
    fx_call(fx, M_FAIL, "k", NULL, &o);
    fx_wait(fx, &o);
    rr_log_set(capture, &l, RR_LOG_INFO);
    fx_call(fx, M_ECHO, "quiet", NULL, &o);
    fx_wait(fx, &o);
    rr_log_set(NULL, NULL, RR_LOG_WARN);
    assert_int_equal(l.n_server, 2);
    assert_int_equal(l.n_client, 2);
    // The last of each: the failed call, with its status and message.
    if (strstr(l.server, "call /rrtest.Test/Fail from 127.0.0.1:") == NULL ||
        strstr(l.server, ": NOT_FOUND: no such key in ") == NULL ||
        strstr(l.server, " ms") == NULL)
        fail_msg("server line: %s", l.server);
    char want[160];
    snprintf(want, sizeof(want), "call /rrtest.Test/Fail to %s: NOT_FOUND",
             fx->target);
    if (strstr(l.client, want) == NULL || strstr(l.client, " ms") == NULL)
        fail_msg("client line: %s", l.client);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_level_from_environment),
        cmocka_unit_test_setup_teardown(test_log_one_line_per_call,
                                        fx_group_setup, fx_group_teardown),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
