// SPDX-License-Identifier: MIT
//
// greeter-server [ADDR] -- serves greeter.v1.Greeter and
// rawrpc.health.v1.Health on ADDR (default 127.0.0.1:7500; port 0 lets
// the kernel choose).  SIGINT or SIGTERM shuts it down gracefully: no new
// connections, calls in flight finish (up to 10 s), then it exits 0.

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include <ev.h>

#include "greeter.h"
#include "health/health.h"

typedef struct server_state {
    rr_server *srv;
    rr_health *health;
    bool stopping;
} server_state;

static void
shutdown_done(rr_server *srv, void *arg)
{
    (void) srv;
    (void) arg;
    printf("greeter-server: every connection closed\n");
    fflush(stdout);
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void) loop;
    (void) revents;
    server_state *st = w->data;

    if (st->stopping)
        return;
    st->stopping = true;
    printf("greeter-server: signal %d, shutting down\n", w->signum);
    fflush(stdout);
    // Health first, so a balancer stops sending before the GOAWAY.
    rr_health_set(st->health, "", RR_HEALTH_NOT_SERVING);
    rr_server_shutdown(st->srv, 10.0, shutdown_done, st);
}

int
main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:7500";
    struct ev_loop *loop = EV_DEFAULT;
    server_state st = {0};

    if (rr_server_new(&st.srv, loop, NULL) != RR_OK ||
        rr_health_new(&st.health) != RR_OK ||
        greeter_register(st.srv) != RR_OK ||
        rr_health_register(st.srv, st.health) != RR_OK ||
        rr_health_set(st.health, "greeter.v1.Greeter", RR_HEALTH_SERVING) !=
            RR_OK ||
        rr_server_listen(st.srv, addr) != RR_OK) {
        fprintf(stderr, "greeter-server: cannot serve on %s\n", addr);
        rr_server_free(st.srv);
        rr_health_free(st.health);
        return 1;
    }
    printf("greeter-server: listening on port %u\n",
           (unsigned) rr_server_port(st.srv));
    fflush(stdout);

    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    sigint.data = sigterm.data = &st;
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    // The watchers alone do not keep the loop running: ev_run returns
    // once the shutdown has closed the listener and every connection.
    ev_unref(loop);
    ev_unref(loop);
    ev_run(loop, 0);

    ev_ref(loop);
    ev_ref(loop);
    ev_signal_stop(loop, &sigint);
    ev_signal_stop(loop, &sigterm);
    rr_server_free(st.srv); // before the health table it serves
    rr_health_free(st.health);
    ev_loop_destroy(loop);
    printf("greeter-server: bye\n");
    return 0;
}
