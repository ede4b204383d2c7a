// SPDX-License-Identifier: MIT
//
// bench_server.c -- rawrpc's side of the benchmark: the echo service on
// 127.0.0.1 with default options, except as asked:
//
//   rawrpc-bench-server [--port P] [--loops N] [--heartbeat S]
//
// prints "port N" and serves until SIGTERM.  The connection limit is
// lifted and RLIMIT_NOFILE raised to its hard limit, for the idle test.

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"loops", required_argument, NULL, 'l'},
        {"heartbeat", required_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ev_loop *loop = EV_DEFAULT;
    rr_server_opts opts;
    rr_server *srv;
    char addr[64] = "127.0.0.1:0";
    struct rlimit rl;
    int c;

    rr_server_opts_init(&opts);
    opts.max_connections = 1000000;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            snprintf(addr, sizeof(addr), "127.0.0.1:%s", optarg);
            break;
        case 'l':
            opts.loops = (unsigned) strtoul(optarg, NULL, 10);
            break;
        case 'h':
            opts.heartbeat_interval = strtod(optarg, NULL);
            break;
        default:
            fprintf(stderr, "usage: see bench/bench_server.c\n");
            return 2;
        }
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rr_server_new(&srv, loop, &opts) != RR_OK ||
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
