// SPDX-License-Identifier: MIT
//
// bench.c -- rawrpc-bench, a closed-loop load generator: N connections,
// M calls in flight on each, a fixed payload, a warm-up, then a measured
// run.  It speaks rawrpc (through the generated echo client) or the
// baseline's bare protocol, so both are measured by the same code; "raw"
// is the bare protocol without protobuf (the reply's bytes are not
// unpacked), against baseline-server --raw.
//
// Two options make the baseline client do what every RPC client must,
// one at a time (bench/limit-parts.sh): --pack packs the caller's message
// on each call, straight into the output, where the plain baseline copies
// bytes it packed once; --named puts the method's name ahead of each
// request, for baseline-server --named.
//
//   rawrpc-bench --system rawrpc|baseline|raw --port P [--conns N]
//                [--inflight M] [--payload BYTES] [--duration S]
//                [--warmup S] [--server-pid PID] [--scenario NAME]
//                [--pack] [--named]
//
// Prints one JSON object: calls/s, latency quantiles from a histogram
// with under 1 % error, CPU time per call on both sides (the server's
// from /proc), allocations per call on this side, the server's peak RSS.

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

#define RAW_READ ((size_t) 256 * 1024)

// Allocation counting: the binary is linked with -Wl,--wrap=malloc etc.
// and with the static runtime, so rawrpc's own allocations come through
// here.  Default visibility: a sanitizer's runtime must see them too.
#define WRAP __attribute__((visibility("default")))
// NOLINTBEGIN(bugprone-reserved-identifier)
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
WRAP void *__wrap_malloc(size_t n);
WRAP void *__wrap_calloc(size_t n, size_t m);
WRAP void *__wrap_realloc(void *p, size_t n);
static unsigned long long allocs;
void *
__wrap_malloc(size_t n)
{
    allocs++;
    return __real_malloc(n);
}
void *
__wrap_calloc(size_t n, size_t m)
{
    allocs++;
    return __real_calloc(n, m);
}
void *
__wrap_realloc(void *p, size_t n)
{
    allocs++;
    return __real_realloc(p, n);
}
// NOLINTEND(bugprone-reserved-identifier)

enum phase { WARMUP, MEASURE, DONE };

typedef struct bench bench;

typedef struct slot {
    bench *b;
    int conn;
    uint32_t id;
    uint64_t start;
} slot;

typedef struct rawconn { // the baseline protocol
    bench *b;
    int fd;
    ev_io rio, wio;
    uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
} rawconn;

struct bench {
    struct ev_loop *loop;
    bool baseline; // the bare protocol (baseline or raw)
    bool no_proto; // raw: replies are not unpacked
    bool pack;     // baseline: pack the request on each call
    bool named;    // baseline: the method's name ahead of each request
    int conns, inflight;
    size_t payload;
    double duration, warmup;
    int server_pid;
    const char *scenario;
    enum phase phase;
    hist h;
    uint64_t calls, errors;
    rr_channel **chs;
    rawconn *raw;
    slot *slots;
    Rawrpc__Echo__EchoRequest req;
    uint8_t *req_packed; // the baseline's request bytes
    size_t req_len;
    ev_timer phase_timer;
    // measurement
    double cli_cpu0, srv_cpu0, t0;
    unsigned long long allocs0;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void
record(bench *b, slot *s, bool ok)
{
    if (b->phase == MEASURE) {
        hist_add(&b->h, now_ns() - s->start);
        b->calls++;
        b->errors += !ok;
    }
}

// ---------------------------------------------------------------- rawrpc

static void issue_rawrpc(slot *s);

static void
echo_done(rr_status status, const char *message,
          const Rawrpc__Echo__EchoReply *reply, void *arg)
{
    slot *s = arg;

    (void) message;
    (void) reply;
    record(s->b, s, status == RR_STATUS_OK);
    if (s->b->phase != DONE)
        issue_rawrpc(s);
}

static void
issue_rawrpc(slot *s)
{
    s->start = now_ns();
    if (rr_rawrpc__echo__echo__echo(s->b->chs[s->conn], &s->b->req, NULL,
                                    echo_done, s, NULL) != RR_OK) {
        fprintf(stderr, "rawrpc-bench: call refused\n");
        exit(1);
    }
}

// -------------------------------------------------------------- baseline

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
           (uint32_t) p[2] << 8 | p[3];
}

// The name --named requests carry, as baseline-server --named expects it.
static const char method_name[] = "/rawrpc.echo.Echo/Echo";

static void
raw_queue(rawconn *c, slot *s)
{
    bench *b = s->b; // set for every slot before the first call
    size_t req_len = b->pack
                         ? rawrpc__echo__echo_request__get_packed_size(&b->req)
                         : b->req_len;
    size_t name_len = b->named ? sizeof(method_name) : 0; // length byte too
    size_t need = c->out_len + 8 + name_len + req_len;

    if (c->out == NULL || need > c->out_cap) {
        c->out_cap = need * 2;
        c->out = realloc(c->out, c->out_cap);
        if (c->out == NULL)
            exit(1);
    }
    uint8_t *p = c->out + c->out_len;
    put32(p, (uint32_t) (name_len + req_len));
    put32(p + 4, s->id);
    p += 8;
    if (b->named) {
        p[0] = (uint8_t) (sizeof(method_name) - 1);
        memcpy(p + 1, method_name, sizeof(method_name) - 1);
        p += name_len;
    }
    if (b->pack)
        rawrpc__echo__echo_request__pack(&b->req, p);
    else
        memcpy(p, b->req_packed, req_len);
    c->out_len = need;
    s->start = now_ns();
}

static void
raw_flush(rawconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t) n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        } else {
            perror("rawrpc-bench: send");
            exit(1);
        }
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        ev_io_stop(c->b->loop, &c->wio);
    } else {
        ev_io_start(c->b->loop, &c->wio);
    }
}

static void
raw_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    rawconn *c = w->data;
    bench *b = c->b;
    ssize_t n = recv(c->fd, c->in + c->in_len, RAW_READ - c->in_len, 0);

    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        fprintf(stderr, "rawrpc-bench: baseline server closed\n");
        exit(1);
    }
    c->in_len += (size_t) n;
    size_t off = 0;
    while (c->in_len - off >= 8) {
        uint32_t len = get32(c->in + off);
        if (c->in_len - off < 8 + (size_t) len)
            break;
        slot *s = &b->slots[get32(c->in + off + 4)];
        if (b->no_proto) {
            record(b, s, len == b->req_len);
        } else {
            Rawrpc__Echo__EchoReply *r =
                rawrpc__echo__echo_reply__unpack(NULL, len, c->in + off + 8);
            record(b, s, r != NULL);
            if (r != NULL)
                rawrpc__echo__echo_reply__free_unpacked(r, NULL);
        }
        if (b->phase != DONE)
            raw_queue(c, s);
        off += 8 + len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    raw_flush(c);
}

static void
raw_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    raw_flush(w->data);
}

static void
raw_connect(bench *b, rawconn *c, uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->b = b;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 ||
        connect(c->fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        perror("rawrpc-bench: connect");
        exit(1);
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    c->in = malloc(RAW_READ);
    ev_io_init(&c->rio, raw_read_cb, c->fd, EV_READ);
    ev_io_init(&c->wio, raw_write_cb, c->fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_io_start(b->loop, &c->rio);
}

// ----------------------------------------------------------------- phases

static void
phase_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    bench *b = w->data;

    if (b->phase == WARMUP) {
        b->phase = MEASURE;
        b->t0 = ev_time();
        b->cli_cpu0 = proc_self_cpu();
        b->srv_cpu0 = proc_cpu(b->server_pid);
        b->allocs0 = allocs;
        ev_timer_set(w, b->duration, 0.);
        ev_timer_start(loop, w);
        return;
    }
    b->phase = DONE;
    ev_break(loop, EVBREAK_ALL);
}

static void
report(bench *b)
{
    double secs = ev_time() - b->t0;
    double cli = proc_self_cpu() - b->cli_cpu0;
    double srv = proc_cpu(b->server_pid) - b->srv_cpu0;
    double n = b->calls > 0 ? (double) b->calls : 1;

    printf("{\"system\": \"%s\", \"scenario\": \"%s\", \"payload\": %zu, "
           "\"conns\": %d, \"inflight\": %d, \"calls\": %llu, "
           "\"errors\": %llu, \"calls_per_s\": %.0f, \"p50_us\": %.2f, "
           "\"p90_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, "
           "\"max_us\": %.2f, \"srv_cpu_us_per_call\": %.3f, "
           "\"cli_cpu_us_per_call\": %.3f, \"allocs_per_call\": %.3f, "
           "\"rss_kb\": %ld}\n",
           b->no_proto           ? "raw"
           : b->pack && b->named ? "baseline+pack+named"
           : b->pack             ? "baseline+pack"
           : b->named            ? "baseline+named"
           : b->baseline         ? "baseline"
                                 : "rawrpc",
           b->scenario, b->payload, b->conns, b->inflight,
           (unsigned long long) b->calls, (unsigned long long) b->errors,
           (double) b->calls / secs, (double) hist_quantile(&b->h, 0.50) / 1e3,
           (double) hist_quantile(&b->h, 0.90) / 1e3,
           (double) hist_quantile(&b->h, 0.99) / 1e3,
           (double) hist_quantile(&b->h, 0.999) / 1e3, (double) b->h.max / 1e3,
           srv * 1e6 / n, cli * 1e6 / n, (double) (allocs - b->allocs0) / n,
           b->server_pid > 0 ? proc_peak_rss_kb(b->server_pid) : 0L);
}

int
main(int argc, char **argv)
{
    static bench b; // the histogram is large: not on the stack
    static const struct option longopts[] = {
        {"system", required_argument, NULL, 's'},
        {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'c'},
        {"inflight", required_argument, NULL, 'i'},
        {"payload", required_argument, NULL, 'b'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"server-pid", required_argument, NULL, 'P'},
        {"scenario", required_argument, NULL, 'n'},
        {"pack", no_argument, NULL, 'k'},
        {"named", no_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    unsigned port = 0;
    int c;

    b.conns = 1;
    b.inflight = 1;
    b.payload = 64;
    b.duration = 3;
    b.warmup = 1;
    b.scenario = "custom";
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            b.no_proto = strcmp(optarg, "raw") == 0;
            b.baseline = b.no_proto || strcmp(optarg, "baseline") == 0;
            break;
        case 'p':
            port = (unsigned) strtoul(optarg, NULL, 10);
            break;
        case 'c':
            b.conns = (int) strtol(optarg, NULL, 10);
            b.conns = b.conns > 0 ? b.conns : 1;
            break;
        case 'i':
            b.inflight = (int) strtol(optarg, NULL, 10);
            b.inflight = b.inflight > 0 ? b.inflight : 1;
            break;
        case 'b':
            b.payload = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            b.duration = strtod(optarg, NULL);
            break;
        case 'w':
            b.warmup = strtod(optarg, NULL);
            break;
        case 'P':
            b.server_pid = (int) strtol(optarg, NULL, 10);
            break;
        case 'n':
            b.scenario = optarg;
            break;
        case 'k':
            b.pack = true;
            break;
        case 'm':
            b.named = true;
            break;
        default:
            fprintf(stderr, "usage: see bench/bench.c\n");
            return 2;
        }
    }
    if ((b.pack || b.named) && (!b.baseline || b.no_proto)) {
        fprintf(stderr, "rawrpc-bench: --pack and --named are for "
                        "--system baseline\n");
        return 2;
    }
    if (port == 0 || port > 65535) {
        fprintf(stderr, "rawrpc-bench: --port is required\n");
        return 2;
    }

    b.loop = ev_loop_new(EVFLAG_AUTO);
    rawrpc__echo__echo_request__init(&b.req);
    b.req.payload.len = b.payload;
    b.req.payload.data = calloc(1, b.payload > 0 ? b.payload : 1);
    b.req_len = rawrpc__echo__echo_request__get_packed_size(&b.req);
    b.req_packed = malloc(b.req_len > 0 ? b.req_len : 1);
    rawrpc__echo__echo_request__pack(&b.req, b.req_packed);
    b.slots = calloc((size_t) b.conns * (size_t) b.inflight, sizeof(slot));

    char target[32];
    snprintf(target, sizeof(target), "127.0.0.1:%u", port);
    if (b.baseline) {
        b.raw = calloc((size_t) b.conns, sizeof(rawconn));
        for (int i = 0; i < b.conns; i++)
            raw_connect(&b, &b.raw[i], (uint16_t) port);
    } else {
        b.chs = calloc((size_t) b.conns, sizeof(rr_channel *));
        for (int i = 0; i < b.conns; i++) {
            if (rr_channel_new(&b.chs[i], b.loop, target, NULL) != RR_OK)
                return 1;
        }
    }
    for (int i = 0; i < b.conns * b.inflight; i++) {
        slot *s = &b.slots[i];
        s->b = &b;
        s->conn = i / b.inflight;
        s->id = (uint32_t) i;
        if (b.baseline)
            raw_queue(&b.raw[s->conn], s);
        else
            issue_rawrpc(s);
    }
    for (int i = 0; b.baseline && i < b.conns; i++)
        raw_flush(&b.raw[i]);

    ev_timer_init(&b.phase_timer, phase_cb, b.warmup, 0.);
    b.phase_timer.data = &b;
    ev_timer_start(b.loop, &b.phase_timer);
    ev_run(b.loop, 0);
    report(&b);
    return b.errors > 0 ? 1 : 0;
}
