// SPDX-License-Identifier: MIT
//
// nng_bench.c -- nng-bench, the nng 1.5 comparator's load generator: the
// closed loop of rawrpc-bench and grpc-bench (N connections, M calls in
// flight on each, a warm-up, a measured run) on nng's REQ/REP.
//
// Each connection is a req0 socket dialled once (one TCP connection, as
// rawrpc-bench opens one per rr_channel) with M contexts; a REQ context
// has one request outstanding, so M contexts are M calls in flight.  Each
// context's aio goes round send -> recv -> unpack the EchoReply -> record
// -> send the next, as the server's contexts do.  Requests are packed
// EchoRequests (protobuf-c) with --payload bytes, packed for each call
// straight into the message, as rawrpc packs each call.
//
// The callbacks run on nng's task threads, so the meter (histogram and
// counters, peer.h) is behind one mutex; the load generator is pinned to
// one CPU, where it is almost never contended, and it costs two atomic
// operations a call against nng's several.  The main thread only sleeps
// until each phase is due, changes it, and at the end waits for every
// context's last call to come back.  Allocations are not counted
// (allocs_per_call is -1).
//
//   nng-bench --port P [--conns N] [--inflight M] [--payload BYTES]
//             [--duration S] [--warmup S] [--server-pid PID]
//             [--scenario NAME]

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "echo/echo.pb-c.h"
#include "peer.h"

typedef struct cctx {
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;
    uint64_t start;
} cctx;

static struct {
    peer_opts o;
    Rawrpc__Echo__EchoRequest req;
    size_t req_len;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int outstanding; // contexts with a call on the wire
    peer_meter m;
} g = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
};

static void
die(const char *what, int rv)
{
    fprintf(stderr, "nng-bench: %s: %s\n", what, nng_strerror(rv));
    exit(1);
}

// Starts c's next call; false when the request cannot be built.
static bool
cctx_send(cctx *c)
{
    nng_msg *msg;

    if (nng_msg_alloc(&msg, g.req_len) != 0)
        return false;
    rawrpc__echo__echo_request__pack(&g.req, nng_msg_body(msg));
    c->sending = true;
    c->start = peer_now_ns();
    nng_aio_set_msg(c->aio, msg);
    nng_ctx_send(c->ctx, c->aio);
    return true;
}

// One call is over (ok or not): records it and, unless the run is over,
// starts the next.  A context that stops wakes main when it is the last.
static void
cctx_finish(cctx *c, bool ok)
{
    pthread_mutex_lock(&g.mu);
    peer_meter_record(&g.m, c->start, ok);
    bool more = g.m.phase != PEER_DONE;
    if (!more && --g.outstanding == 0)
        pthread_cond_signal(&g.idle);
    pthread_mutex_unlock(&g.mu);
    if (more && !cctx_send(c))
        die("message", NNG_ENOMEM);
}

static bool
reply_ok(nng_msg *msg)
{
    return peer_reply_ok(nng_msg_body(msg), nng_msg_len(msg), g.o.payload);
}

static void
cctx_cb(void *arg)
{
    cctx *c = arg;
    int rv = nng_aio_result(c->aio);

    if (c->sending) {
        if (rv != 0) { // the request was not taken: it is still ours
            nng_msg_free(nng_aio_get_msg(c->aio));
            cctx_finish(c, false);
            return;
        }
        c->sending = false;
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    if (rv != 0) {
        cctx_finish(c, false);
        return;
    }
    nng_msg *msg = nng_aio_get_msg(c->aio);
    bool ok = reply_ok(msg);
    nng_msg_free(msg);
    cctx_finish(c, ok);
}

// Opens a req0 socket connected to the server; dialled synchronously, so
// the connection is up before the first call.
static nng_socket
connect_one(const char *url)
{
    nng_socket s;
    int rv;

    if ((rv = nng_req0_open(&s)) != 0)
        die("req0_open", rv);
    // No resends: a request outstanding longer than the run is a fault to
    // see, not one for REQ to paper over.
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if ((rv = nng_dial(s, url, NULL, 0)) != 0)
        die("dial", rv);
    return s;
}

static void
sleep_until(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t) (ns / 1000000000u),
                          .tv_nsec = (long) (ns % 1000000000u)};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static void
run_phases(void)
{
    sleep_until(g.m.t_measure);
    pthread_mutex_lock(&g.mu);
    peer_meter_begin(&g.m);
    pthread_mutex_unlock(&g.mu);
    sleep_until(g.m.t_end);
    pthread_mutex_lock(&g.mu);
    peer_meter_end(&g.m);
    while (g.outstanding > 0)
        pthread_cond_wait(&g.idle, &g.mu);
    pthread_mutex_unlock(&g.mu);
}

int
main(int argc, char **argv)
{
    if (!peer_parse(argc, argv, &g.o)) {
        fprintf(stderr, "usage: see bench/peers/nng_bench.c\n");
        return 2;
    }
    g.req_len = peer_request_init(&g.req, g.o.payload);

    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", g.o.port);
    size_t n = (size_t) g.o.conns * (size_t) g.o.inflight;
    nng_socket *socks = calloc((size_t) g.o.conns, sizeof(*socks));
    cctx *ctxs = calloc(n, sizeof(*ctxs));
    if (socks == NULL || ctxs == NULL || g.req.payload.data == NULL)
        die("memory", NNG_ENOMEM);
    for (int i = 0; i < g.o.conns; i++)
        socks[i] = connect_one(url);
    for (size_t i = 0; i < n; i++) {
        int rv;
        if ((rv = nng_ctx_open(&ctxs[i].ctx,
                               socks[i / (size_t) g.o.inflight])) != 0 ||
            (rv = nng_aio_alloc(&ctxs[i].aio, cctx_cb, &ctxs[i])) != 0)
            die("context", rv);
    }

    peer_meter_init(&g.m, &g.o);
    g.outstanding = (int) n;
    for (size_t i = 0; i < n; i++)
        if (!cctx_send(&ctxs[i]))
            die("message", NNG_ENOMEM);
    run_phases();
    peer_meter_report(&g.m, "nng", &g.o);

    for (int i = 0; i < g.o.conns; i++)
        nng_close(socks[i]);
    for (size_t i = 0; i < n; i++)
        nng_aio_free(ctxs[i].aio);
    free(ctxs);
    free(socks);
    free(g.req.payload.data);
    return g.m.errors > 0 ? 1 : 0;
}
