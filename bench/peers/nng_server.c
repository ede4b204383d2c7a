// SPDX-License-Identifier: MIT
//
// nng_server.c -- nng-bench-server, the nng 1.5 comparator's echo server:
// one rep0 socket listening on TCP, served by CONTEXTS contexts, each with
// its own aio going round recv -> unpack EchoRequest (protobuf-c) -> pack
// EchoReply -> send, nng's asynchronous REQ/REP form.  Each context holds
// one request at a time, so CONTEXTS bounds what is answered concurrently;
// it is above anything bench/compare.sh keeps in flight.
//
// Threads: the callbacks run on nng's task queue and the sockets on its
// poller thread, neither under our control.  nng 1.5 sizes its pools from
// the number of CPUs it sees at start-up: NNG_NUM_TASKQ_THREADS and its
// kin are build-time settings, and 1.5 has no run-time knob (later nng
// has nng_init_set_parameter).  So the process has some fourteen threads
// where rawrpc has one; bench/compare.sh pins it to one CPU, where they
// take turns.  The hand-off from the poller to a task thread, and nng's
// locks on each message, are part of what this measures: they are how
// nng works.
//
// The reply reuses the request's nng_msg (its body is rewritten once the
// request is unpacked), sparing an allocation a call; baseline-server
// likewise writes replies into a buffer it keeps.
//
//   nng-bench-server [--port P]     prints "port N", serves until SIGTERM

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "echo/echo.pb-c.h"
#include "peer.h"

#define CONTEXTS 256

typedef struct rctx {
    nng_aio *aio;
    nng_ctx ctx;
    enum { RECVING, SENDING } state;
} rctx;

// Rewrites msg's body from an EchoRequest into its EchoReply; -1 when the
// request does not unpack.
static int
answer(nng_msg *msg)
{
    Rawrpc__Echo__EchoRequest *req = rawrpc__echo__echo_request__unpack(
        NULL, nng_msg_len(msg), nng_msg_body(msg));
    if (req == NULL)
        return -1;
    Rawrpc__Echo__EchoReply rep = RAWRPC__ECHO__ECHO_REPLY__INIT;
    rep.payload = req->payload;
    size_t n = rawrpc__echo__echo_reply__get_packed_size(&rep);
    int rv = nng_msg_realloc(msg, n);
    if (rv == 0)
        rawrpc__echo__echo_reply__pack(&rep, nng_msg_body(msg));
    rawrpc__echo__echo_request__free_unpacked(req, NULL);
    return rv == 0 ? 0 : -1;
}

static void
rctx_recv(rctx *c)
{
    c->state = RECVING;
    nng_ctx_recv(c->ctx, c->aio);
}

// The aio's callback, on one of nng's task threads: one context's steps
// never run at once, so a context needs no lock of its own.
static void
rctx_cb(void *arg)
{
    rctx *c = arg;
    int rv = nng_aio_result(c->aio);

    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return; // shutting down
    if (c->state == SENDING) {
        if (rv != 0) // the reply was not taken: it is still ours
            nng_msg_free(nng_aio_get_msg(c->aio));
        rctx_recv(c);
        return;
    }
    if (rv != 0) {
        rctx_recv(c);
        return;
    }
    nng_msg *msg = nng_aio_get_msg(c->aio);
    if (answer(msg) != 0) { // no reply; the peer's request is dropped
        nng_msg_free(msg);
        rctx_recv(c);
        return;
    }
    c->state = SENDING;
    nng_aio_set_msg(c->aio, msg);
    nng_ctx_send(c->ctx, c->aio);
}

static int
fail(const char *what, int rv)
{
    fprintf(stderr, "nng-bench-server: %s: %s\n", what, nng_strerror(rv));
    return 1;
}

int
main(int argc, char **argv)
{
    long want = peer_port_arg(argc, argv);
    if (want < 0) {
        fprintf(stderr, "usage: nng-bench-server [--port P]\n");
        return 2;
    }
    // Blocked before nng starts its threads, which inherit the mask: the
    // signal is left to sigwait below.
    sigset_t set;
    peer_block_stop_signals(&set);

    nng_socket sock;
    nng_listener l;
    char url[64];
    int rv, port;
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%ld", want);
    if ((rv = nng_rep0_open(&sock)) != 0)
        return fail("rep0_open", rv);
    if ((rv = nng_listen(sock, url, &l, 0)) != 0)
        return fail("listen", rv);
    if ((rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)) != 0)
        return fail("bound port", rv);

    static rctx ctxs[CONTEXTS];
    for (int i = 0; i < CONTEXTS; i++) {
        if ((rv = nng_ctx_open(&ctxs[i].ctx, sock)) != 0 ||
            (rv = nng_aio_alloc(&ctxs[i].aio, rctx_cb, &ctxs[i])) != 0)
            return fail("context", rv);
        rctx_recv(&ctxs[i]);
    }
    printf("port %d\n", port);
    fflush(stdout);

    int sig;
    sigwait(&set, &sig);
    nng_close(sock); // fails every pending aio with NNG_ECLOSED
    for (int i = 0; i < CONTEXTS; i++)
        nng_aio_free(ctxs[i].aio); // waits for its callback
    return 0;
}
