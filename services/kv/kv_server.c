// SPDX-License-Identifier: MIT
//
// rawrpc-kv-server -- serves rawrpc.kv.Kv, rawrpc.health.v1.Health and
// rawrpc.echo.Echo.  Prints "listening on HOST:PORT" once ready (port 0
// lets the kernel choose); on SIGINT or SIGTERM it shuts down gracefully:
// GOAWAY, calls in flight finish (up to --grace seconds), then exit 0.

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo/echo.h"
#include "health/health.h"
#include "kv/kv.h"

static void
usage(FILE *fp)
{
    fprintf(fp, "usage: rawrpc-kv-server [--host H] [--port P] "
                "[--grace SECONDS] [--log-level debug|info|warn|error]\n");
}

typedef struct server_state {
    rr_server *srv;
    double grace;
    bool stopping;
} server_state;

static void
shutdown_done(rr_server *srv, void *arg)
{
    (void) srv;
    (void) arg;
    printf("rawrpc-kv-server: every connection closed; bye\n");
    fflush(stdout);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void) loop;
    (void) revents;
    server_state *st = w->data;

    if (st->stopping)
        return;
    st->stopping = true;
    printf("rawrpc-kv-server: signal %d: shutting down gracefully\n",
           w->signum);
    fflush(stdout);
    rr_server_shutdown(st->srv, st->grace, shutdown_done, st);
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    unsigned long port = 7411;
    server_state st = {.grace = 10.0};
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"grace", required_argument, NULL, 'g'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    rr_log_level level = RR_LOG_WARN;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = strtoul(optarg, &end, 10);
            if (*end != '\0' || port > 65535) {
                fprintf(stderr, "rawrpc-kv-server: bad port %s\n", optarg);
                return 2;
            }
            break;
        case 'g':
            st.grace = strtod(optarg, NULL);
            break;
        case 'l':
            if (rr_log_level_parse(optarg, &level) != RR_OK) {
                fprintf(stderr, "rawrpc-kv-server: bad log level %s\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    rr_log_set(NULL, NULL, level);

    struct ev_loop *loop = EV_DEFAULT;
    rr_kv *kv = NULL;
    rr_health *health = NULL;
    char addr[300];
    snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%lu" : "%s:%lu",
             host, port);
    if (rr_server_new(&st.srv, loop, NULL) != RR_OK ||
        rr_kv_new(&kv, loop) != RR_OK || rr_health_new(&health) != RR_OK ||
        rr_kv_register(st.srv, kv) != RR_OK ||
        rr_health_register(st.srv, health) != RR_OK ||
        rr_health_set(health, "rawrpc.kv.Kv", RR_HEALTH_SERVING) != RR_OK ||
        rr_echo_register(st.srv) != RR_OK ||
        rr_server_enable_reflection(st.srv) != RR_OK ||
        rr_server_listen(st.srv, addr) != RR_OK) {
        fprintf(stderr, "rawrpc-kv-server: cannot serve on %s\n", addr);
        rr_server_free(st.srv);
        rr_kv_free(kv);
        rr_health_free(health);
        return 1;
    }
    printf("rawrpc-kv-server: listening on %s:%u\n", host,
           (unsigned) rr_server_port(st.srv));
    fflush(stdout);

    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, signal_cb, SIGINT);
    ev_signal_init(&sigterm, signal_cb, SIGTERM);
    sigint.data = sigterm.data = &st;
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    ev_unref(loop); // the signal watchers alone do not keep us running
    ev_unref(loop);
    ev_run(loop, 0); // returns when the shutdown closed everything

    ev_ref(loop);
    ev_ref(loop);
    ev_signal_stop(loop, &sigint);
    ev_signal_stop(loop, &sigterm);
    rr_server_free(st.srv);
    rr_kv_free(kv);
    rr_health_free(health);
    ev_loop_destroy(loop);
    return 0;
}
