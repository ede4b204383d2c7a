// SPDX-License-Identifier: MIT
//
// zmq_server.c -- zmq-bench-server, the ZeroMQ 4.3 comparator's echo
// server: one ROUTER socket on TCP and one thread looping over it.  Each
// request is three frames, [peer identity][request id][EchoRequest]; the
// body is unpacked (protobuf-c), the EchoReply packed straight into a new
// zmq_msg_t, and [identity][id][EchoReply] sent back, the first two
// frames passed on as they came (zmq_msg_send takes them, no copy).  It
// drains every message that is ready (ZMQ_DONTWAIT) before it polls
// again, so a wake-up answers a batch, as baseline-server answers every
// frame one read brought.
//
// Threads: this one, and libzmq's I/O thread (ZMQ_IO_THREADS, 1) which
// owns the TCP sockets: a message crosses a lock-free pipe between the
// two in each direction, and a thread that finds its pipe empty sleeps
// until an eventfd wakes it (under load, once a batch rather than once a
// message).  That hop is how ZeroMQ works; rawrpc and baseline-server
// read and write the socket on the thread that answers.
// bench/compare.sh pins the process to one CPU, so the two threads share
// it.  The high-water marks are raised so that a burst of in-flight calls
// never meets one (ROUTER would drop replies); TCP_NODELAY is ZeroMQ's
// default.
//
//   zmq-bench-server [--port P]     prints "port N", serves until SIGTERM

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "echo/echo.pb-c.h"
#include "peer.h"

#define HWM 100000 // messages; above anything in flight

// The EchoReply to a packed EchoRequest, in out; -1 when it does not
// unpack.
static int
answer(zmq_msg_t *body, zmq_msg_t *out)
{
    Rawrpc__Echo__EchoRequest *req = rawrpc__echo__echo_request__unpack(
        NULL, zmq_msg_size(body), zmq_msg_data(body));
    if (req == NULL)
        return -1;
    Rawrpc__Echo__EchoReply rep = RAWRPC__ECHO__ECHO_REPLY__INIT;
    rep.payload = req->payload;
    int rv =
        zmq_msg_init_size(out, rawrpc__echo__echo_reply__get_packed_size(&rep));
    if (rv == 0)
        rawrpc__echo__echo_reply__pack(&rep, zmq_msg_data(out));
    rawrpc__echo__echo_request__free_unpacked(req, NULL);
    return rv;
}

// Receives the rest of a message whose first frame is in f[0], keeping
// up to n frames in f; returns how many it kept.  Frames past n are read
// and dropped, so the next message starts clean.
static int
recv_rest(void *sock, zmq_msg_t *f, int n)
{
    int got = 1;
    bool more = zmq_msg_more(&f[0]);

    while (more) {
        zmq_msg_t spill;
        zmq_msg_init(&spill);
        zmq_msg_t *m = &spill;
        if (got < n) {
            zmq_msg_close(&spill); // a frame to keep goes to f
            m = &f[got];
            zmq_msg_init(m);
        }
        zmq_msg_recv(m, sock, 0); // the rest of a message is already here
        more = zmq_msg_more(m);
        if (m == &spill)
            zmq_msg_close(m);
        else
            got++;
    }
    return got;
}

// Answers one message, [identity][id][body], taking ownership of f[0].
static void
serve_one(void *sock, zmq_msg_t f[3])
{
    int got = recv_rest(sock, f, 3);
    zmq_msg_t rep;

    if (got == 3 && answer(&f[2], &rep) == 0) {
        zmq_msg_send(&f[0], sock, ZMQ_SNDMORE); // ownership passes
        zmq_msg_send(&f[1], sock, ZMQ_SNDMORE);
        if (zmq_msg_send(&rep, sock, 0) < 0)
            zmq_msg_close(&rep);
    }
    for (int i = 0; i < got; i++)
        zmq_msg_close(&f[i]); // a no-op on frames that were sent
}

// Answers every message that is ready; -1 on an error other than "no
// more for now".
static int
drain(void *sock)
{
    for (;;) {
        zmq_msg_t f[3];
        zmq_msg_init(&f[0]);
        if (zmq_msg_recv(&f[0], sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f[0]);
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        serve_one(sock, f);
    }
}

static void *
open_router(void *zctx, long want, int *port)
{
    void *sock = zmq_socket(zctx, ZMQ_ROUTER);
    int hwm = HWM, zero = 0;
    char ep[64];
    size_t len = sizeof(ep);

    if (sock == NULL)
        return NULL;
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    if (want > 0)
        snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%ld", want);
    else
        snprintf(ep, sizeof(ep), "tcp://127.0.0.1:*");
    if (zmq_bind(sock, ep) != 0 ||
        zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &len) != 0) {
        zmq_close(sock);
        return NULL;
    }
    const char *colon = strrchr(ep, ':'); // "tcp://127.0.0.1:N"
    *port = colon != NULL ? (int) strtol(colon + 1, NULL, 10) : 0;
    return sock;
}

int
main(int argc, char **argv)
{
    long want = peer_port_arg(argc, argv);
    if (want < 0) {
        fprintf(stderr, "usage: zmq-bench-server [--port P]\n");
        return 2;
    }
    // Blocked before libzmq starts its I/O thread, which inherits the
    // mask; the signals come in on a signalfd polled beside the socket.
    sigset_t set;
    peer_block_stop_signals(&set);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);

    void *zctx = zmq_ctx_new();
    int port = 0;
    void *sock = zctx != NULL ? open_router(zctx, want, &port) : NULL;
    if (sfd < 0 || sock == NULL || port == 0) {
        fprintf(stderr, "zmq-bench-server: cannot listen: %s\n",
                zmq_strerror(zmq_errno()));
        return 1;
    }
    printf("port %d\n", port);
    fflush(stdout);

    zmq_pollitem_t items[2] = {{.socket = sock, .events = ZMQ_POLLIN},
                               {.fd = sfd, .events = ZMQ_POLLIN}};
    int rc = 0;
    while (rc == 0) {
        rc = drain(sock);
        if (rc == 0 && zmq_poll(items, 2, -1) < 0 && errno != EINTR)
            rc = -1;
        if (items[1].revents & ZMQ_POLLIN)
            break; // SIGTERM or SIGINT
    }
    if (rc != 0)
        fprintf(stderr, "zmq-bench-server: %s\n", zmq_strerror(zmq_errno()));
    zmq_close(sock);
    zmq_ctx_term(zctx);
    close(sfd);
    return rc == 0 ? 0 : 1;
}
