// SPDX-License-Identifier: MIT
//
// health_server.c -- a server that serves nothing but rawrpc::health
// (one call), for test_kv_health.sh: "rawrpc-kv health" must work against
// any server that serves it.  Prints its port; SIGTERM stops it.

#include <signal.h>
#include <stdio.h>

#include <ev.h>

#include "health/health.h"

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void) revents;
    rr_server_shutdown(w->data, 1.0, NULL, NULL);
    ev_signal_stop(loop, w);
}

int
main(void)
{
    struct ev_loop *loop = EV_DEFAULT;
    rr_server *srv = NULL;
    rr_health *health = NULL;

    if (rr_server_new(&srv, loop, NULL) != RR_OK ||
        rr_health_new(&health) != RR_OK ||
        rr_health_register(srv, health) != RR_OK ||
        rr_health_set(health, "demo.Down", RR_HEALTH_NOT_SERVING) != RR_OK ||
        rr_server_listen(srv, "127.0.0.1:0") != RR_OK) {
        fprintf(stderr, "health_server: cannot serve\n");
        rr_server_free(srv);
        rr_health_free(health);
        return 1;
    }
    printf("port %u\n", (unsigned) rr_server_port(srv));
    fflush(stdout);
    ev_signal term;
    ev_signal_init(&term, on_signal, SIGTERM);
    term.data = srv;
    ev_signal_start(loop, &term);
    ev_unref(loop);
    ev_run(loop, 0);
    ev_ref(loop);
    if (ev_is_active(&term))
        ev_signal_stop(loop, &term);
    rr_server_free(srv);
    rr_health_free(health);
    ev_loop_destroy(loop);
    return 0;
}
