// SPDX-License-Identifier: MIT
//
// testing.c -- the test kit for users; see rawrpc/testing.h.

#include "rawrpc/testing.h"

// The function behind the macro, for callers that take its address (and
// for the ABI of programs built before the macro).
#undef rr_testkit_new

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/server.h"
#include "util/log.h"

struct rr_testkit {
    const char *test; // the function that made the kit: the test's name
    struct ev_loop *loop;
    rr_server *srv;
    rr_channel *ch;
    int fds; // open descriptors before the kit
};

static int
testkit_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; // the directory's own
}

int
rr_testkit_new(rr_testkit **out, const rr_server_opts *sopts,
               const rr_channel_opts *copts)
{
    return rr_testkit_new_in(out, sopts, copts, NULL);
}

int
rr_testkit_new_in(rr_testkit **out, const rr_server_opts *sopts,
                  const rr_channel_opts *copts, const char *test)
{
    rr_testkit *kit = calloc(1, sizeof(*kit));
    char target[32];
    int rv = RR_ENOMEM;

    if (kit == NULL)
        return RR_ENOMEM;
    kit->fds = testkit_fds();
    kit->test = test != NULL ? test : "a test";
    if ((kit->loop = ev_loop_new(EVFLAG_AUTO)) == NULL)
        goto fail;
    if ((rv = rr_server_new(&kit->srv, kit->loop, sopts)) != RR_OK ||
        (rv = rr_server_listen(kit->srv, "127.0.0.1:0")) != RR_OK)
        goto fail;
    snprintf(target, sizeof(target), "127.0.0.1:%u",
             (unsigned) rr_server_port(kit->srv));
    if ((rv = rr_channel_new(&kit->ch, kit->loop, target, copts)) != RR_OK)
        goto fail;
    *out = kit;
    return RR_OK;

fail:
    rr_server_free(kit->srv);
    if (kit->loop != NULL)
        ev_loop_destroy(kit->loop);
    free(kit);
    return rv;
}

struct ev_loop *
rr_testkit_loop(rr_testkit *kit)
{
    return kit->loop;
}

rr_server *
rr_testkit_server(rr_testkit *kit)
{
    return kit->srv;
}

rr_channel *
rr_testkit_channel(rr_testkit *kit)
{
    return kit->ch;
}

uint16_t
rr_testkit_port(rr_testkit *kit)
{
    return rr_server_port(kit->srv);
}

static void
testkit_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    *(bool *) w->data = true;
}

bool
rr_testkit_run_until(rr_testkit *kit, const bool *flag, double timeout)
{
    ev_timer t;
    bool expired = false;

    ev_timer_init(&t, testkit_timeout_cb, timeout, 0.);
    t.data = &expired;
    ev_timer_start(kit->loop, &t);
    while (!*flag && !expired)
        ev_run(kit->loop, EVRUN_ONCE);
    ev_timer_stop(kit->loop, &t);
    return *flag;
}

// Calls whose handlers never completed them: each is named (method and
// test) on stderr, whatever the log level, and failed, so that its memory
// goes instead of turning up as an anonymous leak after the test passed.
// Returns RR_OK, or RR_EINVAL when there was one.
static int
testkit_unfinished(rr_testkit *kit)
{
    rr_call *calls[16];
    size_t n, total = 0;

    // Failing a call (its connection is gone) only frees it: take them
    // sixteen at a time until none is left.
    while ((n = rr__core_live(kit->srv->core, calls, 16)) > 0) {
        for (size_t i = 0; i < n && i < 16; i++, total++) {
            if (total < 16)
                fprintf(stderr,
                        "rawrpc test kit: in %s, the handler of %s never "
                        "completed its call (rr_call_reply or rr_call_fail); "
                        "failing it now\n",
                        kit->test, rr_call_method(calls[i])->full_name);
            rr_call_fail(calls[i], RR_STATUS_ABORTED, "the test kit was freed");
        }
    }
    if (total > 16)
        fprintf(stderr, "rawrpc test kit: in %s, %zu more such calls\n",
                kit->test, total - 16);
    return total > 0 ? RR_EINVAL : RR_OK;
}

int
rr_testkit_free(rr_testkit *kit)
{
    if (kit == NULL)
        return RR_OK;
    rr_channel_free(kit->ch);
    int rv = testkit_unfinished(kit);
    rr_server_free(kit->srv);
    ev_run(kit->loop, EVRUN_NOWAIT); // deferred closes
    ev_loop_destroy(kit->loop);
    int before = kit->fds;
    free(kit);
    int now = testkit_fds();
    if (now != before) {
        rr__log(RR_LOG_ERROR, "test kit: %d file descriptors open, %d before",
                now, before);
        return RR_ECLOSED;
    }
    return rv;
}
