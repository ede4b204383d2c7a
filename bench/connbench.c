// SPDX-License-Identifier: MIT
//
// connbench.c -- rawrpc-connbench, the connection-level benchmarks.
//
//   rawrpc-connbench --mode churn --system rawrpc|baseline --port P
//                    [--lanes K] [--duration S] [--warmup S]
//                    [--server-pid PID] [--scenario NAME]
//     K lanes, each in a closed loop: connect, one 64-byte echo call,
//     close.  Reports connections per second and the cycle's latency.
//
//   rawrpc-connbench --mode idle --port P --conns N [--heartbeat S]
//                    [--hold S] [--server-pid PID] [--scenario NAME]
//     N rawrpc connections that each make one call and then stay idle
//     for the hold time, heartbeats on.  Reports the server's RSS before
//     and after and the CPU its heartbeats cost.
//
// Prints one JSON object.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "echo/echo.rr.h"
#include "hist.h"
#include "proc.h"

#define IDLE_BATCH 256 // connections being set up at once

typedef struct cbench cbench;

typedef struct lane {
    cbench *b;
    uint64_t start;
    rr_channel *ch; // rawrpc
    int fd;         // baseline
    ev_io io;
    uint8_t in[256];
    size_t in_len;
    ev_timer next; // a fresh cycle, outside the finished one's callbacks
} lane;

struct cbench {
    struct ev_loop *loop;
    bool baseline, idle;
    char target[32];
    uint16_t port;
    int lanes, conns;
    double duration, warmup, heartbeat, hold;
    int server_pid;
    const char *scenario;
    bool measuring, done;
    hist h;
    uint64_t cycles, errors;
    lane *l;
    Rawrpc__Echo__EchoRequest req;
    uint8_t req_frame[8 + 80]; // the baseline's request: header + message
    size_t req_frame_len;
    ev_timer phase;
    double t0, srv_cpu0;
    // idle
    rr_channel **chs;
    int opened, answered;
    long rss0_kb;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void lane_start(lane *l);

static void
lane_done(lane *l, bool ok)
{
    cbench *b = l->b;

    if (b->measuring && !b->done) {
        hist_add(&b->h, now_ns() - l->start);
        b->cycles++;
        b->errors += !ok;
    }
    if (!b->done) {
        ev_timer_set(&l->next, 0., 0.);
        ev_timer_start(b->loop, &l->next);
    }
}

// ---------------------------------------------------------------- rawrpc

static void
churn_reply(rr_status status, const char *message,
            const Rawrpc__Echo__EchoReply *reply, void *arg)
{
    lane *l = arg;

    (void) message;
    (void) reply;
    lane_done(l, status == RR_STATUS_OK);
}

// --------------------------------------------------------------- baseline

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
           (uint32_t) p[2] << 8 | p[3];
}

static void
raw_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    lane *l = w->data;
    cbench *b = l->b;

    if (revents & EV_WRITE) { // connected: send the request
        ev_io_stop(loop, w);
        if (send(l->fd, b->req_frame, b->req_frame_len, MSG_NOSIGNAL) !=
            (ssize_t) b->req_frame_len) {
            perror("rawrpc-connbench: send");
            exit(1);
        }
        ev_io_set(w, l->fd, EV_READ);
        ev_io_start(loop, w);
        return;
    }
    ssize_t n = recv(l->fd, l->in + l->in_len, sizeof(l->in) - l->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        fprintf(stderr, "rawrpc-connbench: baseline server closed\n");
        exit(1);
    }
    l->in_len += (size_t) n;
    if (l->in_len < 8 || l->in_len < 8 + (size_t) get32(l->in))
        return;
    Rawrpc__Echo__EchoReply *r =
        rawrpc__echo__echo_reply__unpack(NULL, get32(l->in), l->in + 8);
    if (r != NULL)
        rawrpc__echo__echo_reply__free_unpacked(r, NULL);
    ev_io_stop(loop, w);
    close(l->fd);
    l->fd = -1;
    lane_done(l, r != NULL);
}

static void
raw_start(lane *l)
{
    cbench *b = l->b;
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(b->port)};
    int one = 1;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        perror("rawrpc-connbench: socket");
        exit(1);
    }
    setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(l->fd, (struct sockaddr *) &sin, sizeof(sin)) != 0 &&
        errno != EINPROGRESS) {
        perror("rawrpc-connbench: connect");
        exit(1);
    }
    l->in_len = 0;
    ev_io_set(&l->io, l->fd, EV_WRITE);
    ev_io_start(b->loop, &l->io);
}

// ----------------------------------------------------------------- churn

static void
lane_start(lane *l)
{
    cbench *b = l->b;

    l->start = now_ns();
    if (b->baseline) {
        raw_start(l);
        return;
    }
    if (rr_channel_new(&l->ch, b->loop, b->target, NULL) != RR_OK ||
        rr_rawrpc__echo__echo__echo(l->ch, &b->req, NULL, churn_reply, l,
                                    NULL) != RR_OK) {
        fprintf(stderr, "rawrpc-connbench: cannot call\n");
        exit(1);
    }
}

static void
lane_next_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    lane *l = w->data;

    rr_channel_free(l->ch); // closes the connection
    l->ch = NULL;
    if (!l->b->done)
        lane_start(l);
}

static void
phase_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    cbench *b = w->data;

    if (!b->measuring) {
        b->measuring = true;
        b->t0 = ev_time();
        b->srv_cpu0 = proc_cpu(b->server_pid);
        ev_timer_set(w, b->duration, 0.);
        ev_timer_start(loop, w);
        return;
    }
    b->done = true;
    ev_break(loop, EVBREAK_ALL);
}

static int
churn(cbench *b)
{
    ev_timer_init(&b->phase, phase_cb, b->warmup, 0.);
    b->phase.data = b;
    ev_timer_start(b->loop, &b->phase);
    b->l = calloc((size_t) b->lanes, sizeof(lane));
    for (int i = 0; i < b->lanes; i++) {
        lane *l = &b->l[i];
        l->b = b;
        l->fd = -1;
        ev_io_init(&l->io, raw_io_cb, 0, EV_WRITE);
        l->io.data = l;
        ev_timer_init(&l->next, lane_next_cb, 0., 0.);
        l->next.data = l;
        lane_start(l);
    }
    ev_run(b->loop, 0);
    double secs = ev_time() - b->t0;
    double srv = proc_cpu(b->server_pid) - b->srv_cpu0;
    double n = b->cycles > 0 ? (double) b->cycles : 1;
    printf("{\"system\": \"%s\", \"scenario\": \"%s\", \"lanes\": %d, "
           "\"conns\": %llu, \"errors\": %llu, \"conns_per_s\": %.0f, "
           "\"p50_us\": %.2f, \"p99_us\": %.2f, "
           "\"srv_cpu_us_per_conn\": %.3f}\n",
           b->baseline ? "baseline" : "rawrpc", b->scenario, b->lanes,
           (unsigned long long) b->cycles, (unsigned long long) b->errors,
           (double) b->cycles / secs, (double) hist_quantile(&b->h, 0.5) / 1e3,
           (double) hist_quantile(&b->h, 0.99) / 1e3, srv * 1e6 / n);
    for (int i = 0; i < b->lanes; i++) {
        rr_channel_free(b->l[i].ch);
        if (b->l[i].fd >= 0)
            close(b->l[i].fd);
    }
    free(b->l);
    return b->errors > 0 ? 1 : 0;
}

// ------------------------------------------------------------------ idle

static void idle_open_more(cbench *b);

static void
idle_reply(rr_status status, const char *message,
           const Rawrpc__Echo__EchoReply *reply, void *arg)
{
    cbench *b = arg;

    (void) reply;
    if (status != RR_STATUS_OK) {
        fprintf(stderr, "rawrpc-connbench: idle call failed: %s\n", message);
        exit(1);
    }
    b->answered++;
    idle_open_more(b);
    if (b->answered == b->conns)
        ev_break(b->loop, EVBREAK_ALL);
}

// Keeps IDLE_BATCH connections being set up until all N are.
static void
idle_open_more(cbench *b)
{
    rr_channel_opts o;

    rr_channel_opts_init(&o);
    o.heartbeat_interval = b->heartbeat;
    while (b->opened < b->conns && b->opened - b->answered < IDLE_BATCH) {
        rr_channel **ch = &b->chs[b->opened++];
        if (rr_channel_new(ch, b->loop, b->target, &o) != RR_OK ||
            rr_rawrpc__echo__echo__echo(*ch, &b->req, NULL, idle_reply, b,
                                        NULL) != RR_OK) {
            fprintf(stderr, "rawrpc-connbench: cannot open connection %d\n",
                    b->opened);
            exit(1);
        }
    }
}

static void
hold_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) w;
    (void) revents;
    ev_break(loop, EVBREAK_ALL);
}

static int
idle(cbench *b)
{
    b->rss0_kb = proc_rss_kb(b->server_pid);
    b->chs = calloc((size_t) b->conns, sizeof(rr_channel *));
    double t = ev_time();
    idle_open_more(b);
    ev_run(b->loop, 0);
    double setup = ev_time() - t;

    long rss_open = proc_rss_kb(b->server_pid);
    double cpu0 = proc_cpu(b->server_pid);
    ev_timer hold;
    ev_timer_init(&hold, hold_cb, b->hold, 0.);
    ev_timer_start(b->loop, &hold);
    t = ev_time();
    ev_run(b->loop, 0);
    double held = ev_time() - t, cpu = proc_cpu(b->server_pid) - cpu0;
    long rss = proc_rss_kb(b->server_pid);
    double rounds = b->heartbeat > 0 ? held / b->heartbeat : 0;

    printf("{\"system\": \"rawrpc\", \"scenario\": \"%s\", \"conns\": %d, "
           "\"setup_s\": %.2f, \"hold_s\": %.1f, \"heartbeat_s\": %.1f, "
           "\"rss_start_kb\": %ld, \"rss_open_kb\": %ld, "
           "\"rss_end_kb\": %ld, \"peak_rss_kb\": %ld, "
           "\"bytes_per_conn\": %.0f, \"hold_cpu_pct\": %.3f, "
           "\"cpu_us_per_conn_heartbeat\": %.3f}\n",
           b->scenario, b->conns, setup, held, b->heartbeat, b->rss0_kb,
           rss_open, rss, proc_peak_rss_kb(b->server_pid),
           (double) (rss - b->rss0_kb) * 1024 / b->conns, cpu / held * 100,
           rounds > 0 ? cpu * 1e6 / ((double) b->conns * rounds) : 0);
    for (int i = 0; i < b->conns; i++)
        rr_channel_free(b->chs[i]);
    free(b->chs);
    return 0;
}

int
main(int argc, char **argv)
{
    static cbench b; // the histogram is large: not on the stack
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, 'm'},
        {"system", required_argument, NULL, 's'},
        {"port", required_argument, NULL, 'p'},
        {"lanes", required_argument, NULL, 'k'},
        {"conns", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"heartbeat", required_argument, NULL, 'h'},
        {"hold", required_argument, NULL, 'H'},
        {"server-pid", required_argument, NULL, 'P'},
        {"scenario", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    unsigned long port = 0;
    struct rlimit rl;
    int c;

    b.lanes = 8;
    b.conns = 1000;
    b.duration = 3;
    b.warmup = 1;
    b.heartbeat = 5;
    b.hold = 10;
    b.scenario = "custom";
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            b.idle = strcmp(optarg, "idle") == 0;
            break;
        case 's':
            b.baseline = strcmp(optarg, "baseline") == 0;
            break;
        case 'p':
            port = strtoul(optarg, NULL, 10);
            break;
        case 'k':
            b.lanes = (int) strtol(optarg, NULL, 10);
            break;
        case 'c':
            b.conns = (int) strtol(optarg, NULL, 10);
            break;
        case 'd':
            b.duration = strtod(optarg, NULL);
            break;
        case 'w':
            b.warmup = strtod(optarg, NULL);
            break;
        case 'h':
            b.heartbeat = strtod(optarg, NULL);
            break;
        case 'H':
            b.hold = strtod(optarg, NULL);
            break;
        case 'P':
            b.server_pid = (int) strtol(optarg, NULL, 10);
            break;
        case 'n':
            b.scenario = optarg;
            break;
        default:
            fprintf(stderr, "usage: see bench/connbench.c\n");
            return 2;
        }
    }
    if (port == 0 || port > 65535 || b.lanes < 1 || b.conns < 1) {
        fprintf(stderr, "rawrpc-connbench: bad or missing options\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { // the idle test's descriptors
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    b.port = (uint16_t) port;
    snprintf(b.target, sizeof(b.target), "127.0.0.1:%lu", port);
    b.loop = ev_loop_new(EVFLAG_AUTO);

    // A 64-byte payload, as in the load scenarios.
    static uint8_t payload[64];
    rawrpc__echo__echo_request__init(&b.req);
    b.req.payload.data = payload;
    b.req.payload.len = sizeof(payload);
    size_t len = rawrpc__echo__echo_request__get_packed_size(&b.req);
    uint8_t *f = b.req_frame;
    f[0] = (uint8_t) (len >> 24);
    f[1] = (uint8_t) (len >> 16);
    f[2] = (uint8_t) (len >> 8);
    f[3] = (uint8_t) len;
    memset(f + 4, 0, 4); // request ID 0
    rawrpc__echo__echo_request__pack(&b.req, f + 8);
    b.req_frame_len = 8 + len;

    int rv = b.idle ? idle(&b) : churn(&b);
    ev_loop_destroy(b.loop);
    return rv;
}
