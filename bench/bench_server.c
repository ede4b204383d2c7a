// SPDX-License-Identifier: MIT
//
// bench_server.c -- rawrpc's side of the benchmark: the echo service on
// 127.0.0.1 with default options.
//
//   rawrpc-bench-server [--port P]  prints "port N", serves until SIGTERM

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo/echo.h"

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void) w;
    (void) revents;
    ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
    struct ev_loop *loop = EV_DEFAULT;
    rr_server *srv;
    char addr[64] = "127.0.0.1:0";

    if (argc == 3 && strcmp(argv[1], "--port") == 0)
        snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[2]);
    if (rr_server_new(&srv, loop, NULL) != RR_OK ||
        rr_echo_register(srv) != RR_OK ||
        rr_server_listen(srv, addr) != RR_OK) {
        fprintf(stderr, "rawrpc-bench-server: cannot listen on %s\n", addr);
        return 1;
    }
    printf("port %u\n", (unsigned) rr_server_port(srv));
    fflush(stdout);
    ev_signal sterm, sint;
    ev_signal_init(&sterm, stop_cb, SIGTERM);
    ev_signal_init(&sint, stop_cb, SIGINT);
    ev_signal_start(loop, &sterm);
    ev_signal_start(loop, &sint);
    ev_run(loop, 0);
    rr_server_free(srv);
    return 0;
}
