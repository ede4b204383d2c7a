// SPDX-License-Identifier: MIT
//
// bench_server.c -- rawrpc's side of the benchmark: the echo service on
// 127.0.0.1 with default options, except as asked:
//
//   rawrpc-bench-server [--port P] [--loops N] [--heartbeat S]
//                       [--work-us U] [--worker]
//
// prints "port N" and serves until SIGTERM.  --work-us makes each call
// spin for U microseconds of CPU before it answers, so the server, not
// the load generator, is the bottleneck (the multi-loop scaling test).
// --worker hands every call to one worker thread, which answers with
// rr_call_reply_from_thread (a service that does its work off the loop).
// The
// connection limit is lifted and RLIMIT_NOFILE raised to its hard limit, for
// the idle test.

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "echo/echo.h"
#include "echo/echo.rr.h"

static double work_s; // --work-us, in seconds

static double
cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

// Echo after work_s of this thread's CPU time.
static void
echo_working(rr_call *call, const Rawrpc__Echo__EchoRequest *req, void *arg)
{
    Rawrpc__Echo__EchoReply out = RAWRPC__ECHO__ECHO_REPLY__INIT;
    double until = cpu_now() + work_s;

    (void) arg;
    while (cpu_now() < until)
        ;
    out.payload = req->payload;
    rr_rawrpc__echo__echo__echo__reply(call, &out);
}

// --worker: calls wait in a list for the one worker thread.
typedef struct job {
    rr_call *call;
    const Rawrpc__Echo__EchoRequest *req; // valid until the call completes
    struct job *next;
} job;

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cv = PTHREAD_COND_INITIALIZER;
static job *jobs_head, **jobs_tail = &jobs_head;

static void
echo_queued(rr_call *call, const Rawrpc__Echo__EchoRequest *req, void *arg)
{
    job *j = malloc(sizeof(*j));

    (void) arg;
    if (j == NULL) {
        rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    *j = (job){call, req, NULL};
    pthread_mutex_lock(&jobs_mu);
    *jobs_tail = j;
    jobs_tail = &j->next;
    pthread_cond_signal(&jobs_cv);
    pthread_mutex_unlock(&jobs_mu);
}

// Takes the whole list at once and answers it, as a pool would.
static void *
worker_main(void *arg)
{
    (void) arg;
    for (;;) {
        pthread_mutex_lock(&jobs_mu);
        while (jobs_head == NULL)
            pthread_cond_wait(&jobs_cv, &jobs_mu);
        job *j = jobs_head;
        jobs_head = NULL;
        jobs_tail = &jobs_head;
        pthread_mutex_unlock(&jobs_mu);
        while (j != NULL) {
            job *next = j->next;
            Rawrpc__Echo__EchoReply out = RAWRPC__ECHO__ECHO_REPLY__INIT;
            out.payload = j->req->payload;
            rr_call_reply_from_thread(j->call, &out.base);
            free(j);
            j = next;
        }
    }
    return NULL;
}

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
        {"work-us", required_argument, NULL, 'u'},
        {"worker", no_argument, NULL, 'W'},
        {NULL, 0, NULL, 0},
    };
    struct ev_loop *loop = EV_DEFAULT;
    rr_server_opts opts;
    rr_server *srv;
    char addr[64] = "127.0.0.1:0";
    struct rlimit rl;
    bool worker = false;
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
        case 'u':
            work_s = strtod(optarg, NULL) / 1e6;
            break;
        case 'W':
            worker = true;
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
    static const rr_rawrpc__echo__echo__handlers working = {.echo =
                                                                echo_working};
    static const rr_rawrpc__echo__echo__handlers queued = {.echo = echo_queued};
    pthread_t tid;
    if (worker && pthread_create(&tid, NULL, worker_main, NULL) != 0)
        return 1; // it serves until the process exits
    if (rr_server_new(&srv, loop, &opts) != RR_OK ||
        (worker       ? rr_rawrpc__echo__echo__register(srv, &queued, NULL)
         : work_s > 0 ? rr_rawrpc__echo__echo__register(srv, &working, NULL)
                      : rr_echo_register(srv)) != RR_OK ||
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
