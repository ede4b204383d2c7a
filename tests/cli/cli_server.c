// SPDX-License-Identifier: MIT
//
// cli_server.c -- the server the command-line caller's tests call: it
// echoes clitest.All back, serves health, and has reflection unless
// --no-reflection.  Prints "listening on 127.0.0.1:PORT" once it does;
// SIGTERM ends it.

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "all.rr.h"
#include "health/health.h"
#include "rawrpc/rawrpc.h"

static void
echo(rr_call *call, const Clitest__All *req, void *arg)
{
    size_t len = 0;
    const uint8_t *note = rr_call_metadata(call, "x-note", &len);
    char buf[128];
    Clitest__All out = *req;

    (void) arg;
    if (note != NULL) {
        snprintf(buf, sizeof(buf), "%.*s", (int) len, (const char *) note);
        out.note = buf;
    }
    rr_clitest__echo__echo__reply(call, &out);
}

static void
hang_cancelled(rr_call *call, void *arg)
{
    (void) arg;
    rr_call_fail(call, RR_STATUS_CANCELLED, "cancelled");
}

static void
hang(rr_call *call, const Google__Protobuf__Empty *req, void *arg)
{
    (void) req;
    (void) arg;
    rr_call_on_cancel(call, hang_cancelled, NULL);
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void) revents;
    (void) w;
    ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
    struct ev_loop *loop = EV_DEFAULT;
    rr_server *srv;
    rr_health *health;
    const rr_clitest__echo__handlers h = {.echo = echo, .hang = hang};
    ev_signal term;

    if (rr_server_new(&srv, loop, NULL) != RR_OK ||
        rr_health_new(&health) != RR_OK ||
        rr_clitest__echo__register(srv, &h, NULL) != RR_OK ||
        rr_health_register(srv, health) != RR_OK ||
        rr_health_set(health, "clitest.Echo", RR_HEALTH_SERVING) != RR_OK ||
        (!(argc > 1 && strcmp(argv[1], "--no-reflection") == 0) &&
         rr_server_enable_reflection(srv) != RR_OK) ||
        rr_server_listen(srv, "127.0.0.1:0") != RR_OK) {
        fprintf(stderr, "cli_server: %s\n", rr_last_error());
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", (unsigned) rr_server_port(srv));
    fflush(stdout);
    ev_signal_init(&term, stop_cb, SIGTERM);
    ev_signal_start(loop, &term);
    ev_run(loop, 0);
    rr_server_free(srv);
    rr_health_free(health);
    return 0;
}
