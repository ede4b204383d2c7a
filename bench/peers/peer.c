// SPDX-License-Identifier: MIT
//
// peer.c -- the peer comparators' command line, phases and report (see
// peer.h).  The JSON is grpc-bench's, field for field, so that
// bench/summarize.py reads every system alike.

#include "peer.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "echo/echo.pb-c.h"
#include "proc.h"

static int
at_least_one(const char *s)
{
    long v = strtol(s, NULL, 10);
    return v < 1 ? 1 : (int) v;
}

bool
peer_parse(int argc, char **argv, peer_opts *o)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'c'},
        {"inflight", required_argument, NULL, 'i'},
        {"payload", required_argument, NULL, 'b'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"server-pid", required_argument, NULL, 'P'},
        {"scenario", required_argument, NULL, 'n'},
        {"system", required_argument, NULL, 's'}, // accepted, ignored
        {NULL, 0, NULL, 0},
    };
    *o = (peer_opts){.conns = 1,
                     .inflight = 1,
                     .payload = 64,
                     .duration = 3,
                     .warmup = 1,
                     .scenario = "custom"};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->port = (unsigned) strtoul(optarg, NULL, 10);
            break;
        case 'c':
            o->conns = at_least_one(optarg);
            break;
        case 'i':
            o->inflight = at_least_one(optarg);
            break;
        case 'b':
            o->payload = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            o->duration = strtod(optarg, NULL);
            break;
        case 'w':
            o->warmup = strtod(optarg, NULL);
            break;
        case 'P':
            o->server_pid = (int) strtol(optarg, NULL, 10);
            break;
        case 'n':
            o->scenario = optarg;
            break;
        case 's':
            break;
        default:
            return false;
        }
    }
    return optind == argc && o->port > 0 && o->port <= 65535;
}

uint64_t
peer_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

void
peer_meter_init(peer_meter *m, const peer_opts *o)
{
    uint64_t now = peer_now_ns();

    // The histogram is large and the caller's meter static: clear in place.
    memset(m, 0, sizeof(*m));
    m->phase = PEER_WARMUP;
    m->server_pid = o->server_pid;
    m->t_measure = now + (uint64_t) (o->warmup * 1e9);
    m->t_end = m->t_measure + (uint64_t) (o->duration * 1e9);
}

void
peer_meter_begin(peer_meter *m)
{
    m->phase = PEER_MEASURE;
    m->t0 = peer_now_ns();
    m->cli0 = proc_self_cpu();
    m->srv0 = proc_cpu(m->server_pid);
}

void
peer_meter_end(peer_meter *m)
{
    m->phase = PEER_DONE;
    m->t1 = peer_now_ns();
    m->cli = proc_self_cpu() - m->cli0;
    m->srv = proc_cpu(m->server_pid) - m->srv0;
}

peer_phase
peer_meter_tick(peer_meter *m, uint64_t now)
{
    if (m->phase == PEER_WARMUP && now >= m->t_measure)
        peer_meter_begin(m);
    if (m->phase == PEER_MEASURE && now >= m->t_end)
        peer_meter_end(m);
    return m->phase;
}

int
peer_meter_next_ms(const peer_meter *m, uint64_t now)
{
    if (m->phase == PEER_DONE)
        return -1;
    uint64_t due = m->phase == PEER_WARMUP ? m->t_measure : m->t_end;
    // Rounded up: a poll that wakes a little early only polls again.
    return due <= now ? 0 : (int) ((due - now + 999999) / 1000000);
}

void
peer_meter_record(peer_meter *m, uint64_t start_ns, bool ok)
{
    if (m->phase != PEER_MEASURE)
        return;
    hist_add(&m->h, peer_now_ns() - start_ns);
    m->calls++;
    m->errors += !ok;
}

void
peer_meter_report(const peer_meter *m, const char *system, const peer_opts *o)
{
    double secs = (double) (m->t1 - m->t0) / 1e9;
    double n = m->calls > 0 ? (double) m->calls : 1;

    printf("{\"system\": \"%s\", \"scenario\": \"%s\", \"payload\": %zu, "
           "\"conns\": %d, \"inflight\": %d, \"calls\": %llu, "
           "\"errors\": %llu, \"calls_per_s\": %.0f, \"p50_us\": %.2f, "
           "\"p90_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, "
           "\"max_us\": %.2f, \"srv_cpu_us_per_call\": %.3f, "
           "\"cli_cpu_us_per_call\": %.3f, \"allocs_per_call\": -1, "
           "\"rss_kb\": %ld}\n",
           system, o->scenario, o->payload, o->conns, o->inflight,
           (unsigned long long) m->calls, (unsigned long long) m->errors,
           (double) m->calls / (secs > 0 ? secs : 1),
           (double) hist_quantile(&m->h, 0.50) / 1e3,
           (double) hist_quantile(&m->h, 0.90) / 1e3,
           (double) hist_quantile(&m->h, 0.99) / 1e3,
           (double) hist_quantile(&m->h, 0.999) / 1e3, (double) m->h.max / 1e3,
           m->srv * 1e6 / n, m->cli * 1e6 / n,
           m->server_pid > 0 ? proc_peak_rss_kb(m->server_pid) : 0L);
    fflush(stdout);
}

size_t
peer_request_init(Rawrpc__Echo__EchoRequest *req, size_t payload)
{
    rawrpc__echo__echo_request__init(req);
    req->payload.len = payload;
    req->payload.data = calloc(1, payload > 0 ? payload : 1);
    return rawrpc__echo__echo_request__get_packed_size(req);
}

bool
peer_reply_ok(const void *p, size_t len, size_t payload)
{
    Rawrpc__Echo__EchoReply *r =
        rawrpc__echo__echo_reply__unpack(NULL, len, (const uint8_t *) p);
    bool ok = r != NULL && r->payload.len == payload;

    if (r != NULL)
        rawrpc__echo__echo_reply__free_unpacked(r, NULL);
    return ok;
}

void
peer_block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}
