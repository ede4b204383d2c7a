// SPDX-License-Identifier: MIT
//
// zmq_bench.c -- zmq-bench, the ZeroMQ 4.3 comparator's load generator:
// the closed loop of rawrpc-bench and grpc-bench (N connections, M calls
// in flight on each, a warm-up, a measured run) on libzmq.
//
// Each connection is a DEALER socket (one TCP connection) with M calls in
// flight.  A call is two frames, [request id (4 bytes)][EchoRequest], the
// request packed (protobuf-c) straight into its zmq_msg_t; the reply comes
// back as [id][EchoReply] and the id finds the call's slot, as the request
// ID does in rawrpc's and baseline's frames.  One thread polls every
// socket with zmq_poll and, on each that is readable, takes every reply
// that is there (ZMQ_DONTWAIT), unpacks it, records it and sends that
// slot's next call; the poll's timeout is the next phase change.
//
// As on the server, libzmq's I/O thread owns the TCP sockets: each message
// crosses a pipe between it and this thread (and an eventfd wake-up when
// the other side was idle), a hop rawrpc-bench does not have.
// Allocations are not counted (allocs_per_call is -1).
//
//   zmq-bench --port P [--conns N] [--inflight M] [--payload BYTES]
//             [--duration S] [--warmup S] [--server-pid PID]
//             [--scenario NAME]

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "echo/echo.pb-c.h"
#include "peer.h"

#define HWM 100000 // messages; above anything in flight

typedef struct slot {
    void *sock;
    uint64_t start;
} slot;

static struct {
    peer_opts o;
    Rawrpc__Echo__EchoRequest req;
    size_t req_len;
    slot *slots;
    size_t nslots, outstanding;
    peer_meter m;
} g;

static void
die(const char *what)
{
    fprintf(stderr, "zmq-bench: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

// Sends slot id's next call.  The high-water marks are far above what is
// in flight, so a send that would block is a fault, not back-pressure.
static void
issue(uint32_t id)
{
    slot *s = &g.slots[id];
    zmq_msg_t body;

    if (zmq_msg_init_size(&body, g.req_len) != 0)
        die("message");
    rawrpc__echo__echo_request__pack(&g.req, zmq_msg_data(&body));
    s->start = peer_now_ns();
    if (zmq_send(s->sock, &id, sizeof(id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&body, s->sock, ZMQ_DONTWAIT) < 0)
        die("send");
}

static bool
reply_ok(zmq_msg_t *body)
{
    return peer_reply_ok(zmq_msg_data(body), zmq_msg_size(body), g.o.payload);
}

// One reply whose id frame is in idf: the body follows in the same
// message.  Records it and, unless the run is over, calls again.
static void
take_reply(void *sock, zmq_msg_t *idf)
{
    zmq_msg_t body;
    uint32_t id;

    zmq_msg_init(&body);
    if (zmq_msg_size(idf) != sizeof(id) || !zmq_msg_more(idf) ||
        zmq_msg_recv(&body, sock, 0) < 0 || zmq_msg_more(&body))
        die("malformed reply");
    memcpy(&id, zmq_msg_data(idf), sizeof(id));
    if (id >= g.nslots || g.slots[id].sock != sock)
        die("reply to no call");
    peer_meter_record(&g.m, g.slots[id].start, reply_ok(&body));
    zmq_msg_close(&body);
    if (g.m.phase != PEER_DONE)
        issue(id);
    else
        g.outstanding--;
}

// Takes every reply that is ready on sock.
static void
drain(void *sock)
{
    for (;;) {
        zmq_msg_t idf;
        zmq_msg_init(&idf);
        if (zmq_msg_recv(&idf, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&idf);
            if (errno != EAGAIN && errno != EINTR)
                die("recv");
            return;
        }
        take_reply(sock, &idf);
        zmq_msg_close(&idf);
    }
}

static void *
connect_one(void *zctx, const char *ep)
{
    void *sock = zmq_socket(zctx, ZMQ_DEALER);
    int hwm = HWM, zero = 0;

    if (sock == NULL)
        die("socket");
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    // Connects in the background; calls sent before it is up wait in the
    // pipe, and the warm-up covers the wait.
    if (zmq_connect(sock, ep) != 0)
        die("connect");
    return sock;
}

static void
run(zmq_pollitem_t *items, int n)
{
    while (g.outstanding > 0) {
        uint64_t now = peer_now_ns();
        peer_meter_tick(&g.m, now);
        int timeout = peer_meter_next_ms(&g.m, now);
        // Done: only the last replies are awaited; a server that stopped
        // answering shows as a stall here, not as a hang forever.
        if (zmq_poll(items, n, timeout < 0 ? 5000 : timeout) < 0 &&
            errno != EINTR)
            die("poll");
        bool any = false;
        for (int i = 0; i < n; i++) {
            if (items[i].revents & ZMQ_POLLIN) {
                drain(items[i].socket);
                any = true;
            }
        }
        if (!any && timeout < 0)
            die("no replies");
    }
}

int
main(int argc, char **argv)
{
    if (!peer_parse(argc, argv, &g.o)) {
        fprintf(stderr, "usage: see bench/peers/zmq_bench.c\n");
        return 2;
    }
    g.req_len = peer_request_init(&g.req, g.o.payload);
    g.nslots = (size_t) g.o.conns * (size_t) g.o.inflight;
    g.slots = calloc(g.nslots, sizeof(*g.slots));
    zmq_pollitem_t *items = calloc((size_t) g.o.conns, sizeof(*items));
    void *zctx = zmq_ctx_new();
    if (g.req.payload.data == NULL || g.slots == NULL || items == NULL ||
        zctx == NULL)
        die("setup");

    char ep[64];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u", g.o.port);
    for (int i = 0; i < g.o.conns; i++)
        items[i] = (zmq_pollitem_t){.socket = connect_one(zctx, ep),
                                    .events = ZMQ_POLLIN};
    for (size_t i = 0; i < g.nslots; i++)
        g.slots[i].sock = items[i / (size_t) g.o.inflight].socket;

    peer_meter_init(&g.m, &g.o);
    g.outstanding = g.nslots;
    for (size_t i = 0; i < g.nslots; i++)
        issue((uint32_t) i);
    run(items, g.o.conns);
    peer_meter_report(&g.m, "zmq", &g.o);

    for (int i = 0; i < g.o.conns; i++)
        zmq_close(items[i].socket);
    zmq_ctx_term(zctx);
    free(items);
    free(g.slots);
    free(g.req.payload.data);
    return g.m.errors > 0 ? 1 : 0;
}
