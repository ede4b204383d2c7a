// SPDX-License-Identifier: MIT
//
// interop_server.c -- rawrpc-interop-server, the C server the Python
// interop suite (tests/interop) speaks to.  Built with the public API
// only.  It serves rawrpc.kv.Kv and rawrpc.echo.Echo (services/) and
// rrtest.Test with these handlers:
//   Echo   replies with the request.
//   Hold   replies with the request after strtoul(text) ms, cancelled or
//          not (after a cancel the library drops the reply).
//   Fail   fails with status strtoul(text) and the text after the first
//          space as message.
//   Big    replies with data of strtoul(text) bytes of 'b'.
//   Meta   replies text "present" and data = the request metadata value
//          of key req.text, or text "absent".
//   Unset  has no handler (UNIMPLEMENTED).
//
//   rawrpc-interop-server [--heartbeat-interval S] [--heartbeat-timeout S]
//       [--handshake-timeout S] [--grace S] [--max-calls N]
//       [--max-frame N] [--max-meta N]
//
// Listens on 127.0.0.1:0 and prints "port N" once listening.  On SIGTERM
// it shuts down gracefully (rr_server_shutdown with --grace) and, once
// every connection is closed, prints "executions N" (handler runs) and
// exits 0.  Logs go to stderr.

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo/echo.h"
#include "kv/kv.h"
#include "rawrpc/rawrpc.h"
#include "testmsg.pb-c.h"

typedef struct held {
    ev_timer t; // first member: the timer's address is the held's
    rr_call *call;
    Rrtest__Echo reply;
    struct held *next, *prev;
} held;

typedef struct state {
    struct ev_loop *loop;
    rr_server *srv;
    unsigned long long executions;
    held *holds;
    double grace;
    bool stopping;
} state;

static void
h_echo(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    state *st = arg;

    st->executions++;
    rr_call_reply(call, req);
}

static void
held_unlink(state *st, held *h)
{
    ev_timer_stop(st->loop, &h->t);
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        st->holds = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
}

static void
held_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    held *h = (held *) (void *) w;
    state *st = w->data;

    held_unlink(st, h);
    rr_call_reply(h->call, &h->reply.base);
    free(h);
}

static void
h_hold(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    state *st = arg;
    const Rrtest__Echo *e = (const Rrtest__Echo *) req;
    held *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    st->executions++;
    rrtest__echo__init(&h->reply);
    h->reply.text = e->text; // the request lives until the call completes
    h->reply.data = e->data;
    h->call = call;
    ev_timer_init(&h->t, held_cb, (double) strtoul(e->text, NULL, 10) / 1e3,
                  0.);
    h->t.data = st;
    ev_timer_start(st->loop, &h->t);
    h->next = st->holds;
    if (h->next != NULL)
        h->next->prev = h;
    st->holds = h;
}

static void
h_fail(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    state *st = arg;
    const Rrtest__Echo *e = (const Rrtest__Echo *) req;
    const char *space = strchr(e->text, ' ');
    unsigned long status = strtoul(e->text, NULL, 10);

    st->executions++;
    if (status == 0 || status > RR_STATUS_MAX)
        status = RR_STATUS_INTERNAL;
    rr_call_fail(call, (rr_status) status, space != NULL ? space + 1 : NULL);
}

static void
h_big(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    state *st = arg;
    const Rrtest__Echo *e = (const Rrtest__Echo *) req;
    size_t n = strtoul(e->text, NULL, 10);
    Rrtest__Echo out = RRTEST__ECHO__INIT;
    uint8_t *data = malloc(n > 0 ? n : 1);

    st->executions++;
    if (data == NULL) {
        rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    memset(data, 'b', n);
    out.data.data = data;
    out.data.len = n;
    rr_call_reply(call, &out.base);
    free(data);
}

static void
h_meta(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    state *st = arg;
    const Rrtest__Echo *e = (const Rrtest__Echo *) req;
    Rrtest__Echo out = RRTEST__ECHO__INIT;
    size_t len = 0;
    const uint8_t *v = rr_call_metadata(call, e->text, &len);
    static char present[] = "present", absent[] = "absent";

    st->executions++;
    out.text = v != NULL ? present : absent;
    if (v != NULL) {
        out.data.data = (uint8_t *) (uintptr_t) v;
        out.data.len = len;
    }
    rr_call_reply(call, &out.base);
}

static void
shutdown_done(rr_server *srv, void *arg)
{
    state *st = arg;

    (void) srv;
    ev_break(st->loop, EVBREAK_ALL);
}

static void
term_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void) loop;
    (void) revents;
    state *st = w->data;

    if (!st->stopping) {
        st->stopping = true;
        if (rr_server_shutdown(st->srv, st->grace, shutdown_done, st) != RR_OK)
            ev_break(st->loop, EVBREAK_ALL);
    }
}

static bool
parse_seconds(const char *s, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || v < 0)
        return false;
    *out = v;
    return true;
}

static bool
parse_u32(const char *s, uint32_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);

    if (end == s || *end != '\0' || v > UINT32_MAX)
        return false;
    *out = (uint32_t) v;
    return true;
}

static bool
parse_args(int argc, char **argv, rr_server_opts *o, state *st)
{
    static const struct option longopts[] = {
        {"heartbeat-interval", required_argument, NULL, 'i'},
        {"heartbeat-timeout", required_argument, NULL, 't'},
        {"handshake-timeout", required_argument, NULL, 's'},
        {"grace", required_argument, NULL, 'g'},
        {"max-calls", required_argument, NULL, 'c'},
        {"max-frame", required_argument, NULL, 'f'},
        {"max-meta", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    int c;
    bool ok = true;

    while (ok && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            ok = parse_seconds(optarg, &o->heartbeat_interval);
            break;
        case 't':
            ok = parse_seconds(optarg, &o->heartbeat_timeout);
            break;
        case 's':
            ok = parse_seconds(optarg, &o->handshake_timeout);
            break;
        case 'g':
            ok = parse_seconds(optarg, &st->grace);
            break;
        case 'c':
            ok = parse_u32(optarg, &o->max_concurrent_calls);
            break;
        case 'f':
            ok = parse_u32(optarg, &o->max_frame_size);
            break;
        case 'm':
            ok = parse_u32(optarg, &o->max_metadata_size);
            break;
        default:
            ok = false;
        }
    }
    if (!ok || optind != argc) {
        fprintf(stderr, "usage: see tests/interop/interop_server.c\n");
        return false;
    }
    return true;
}

int
main(int argc, char **argv)
{
    static state st;
    rr_handler_cb handlers[8] = {0};
    rr_server_opts o;
    rr_kv *kv = NULL;

    handlers[0] = h_echo; // the order of rrtest.Test's methods
    handlers[1] = h_hold;
    handlers[2] = h_fail;
    handlers[3] = h_big;
    handlers[4] = h_meta;
    st.loop = EV_DEFAULT;
    st.grace = 10;
    rr_server_opts_init(&o);
    rr_log_set(NULL, NULL, RR_LOG_WARN);
    if (!parse_args(argc, argv, &o, &st))
        return 2;
    if (rr_server_new(&st.srv, st.loop, &o) != RR_OK ||
        rr_kv_new(&kv, st.loop) != RR_OK ||
        rr_kv_register(st.srv, kv) != RR_OK ||
        rr_echo_register(st.srv) != RR_OK ||
        rr_server_add_service(st.srv, &rrtest__test__descriptor, handlers,
                              &st) != RR_OK ||
        rr_server_listen(st.srv, "127.0.0.1:0") != RR_OK) {
        fprintf(stderr, "rawrpc-interop-server: cannot serve\n");
        rr_server_free(st.srv);
        rr_kv_free(kv);
        return 1;
    }
    printf("port %u\n", (unsigned) rr_server_port(st.srv));
    fflush(stdout);

    ev_signal term;
    ev_signal_init(&term, term_cb, SIGTERM);
    term.data = &st;
    ev_signal_start(st.loop, &term);
    ev_run(st.loop, 0);
    ev_signal_stop(st.loop, &term);
    // A late SIGTERM must not kill the cleanup that follows.
    struct sigaction ign = {0};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGTERM, &ign, NULL);

    printf("executions %llu\n", st.executions);
    fflush(stdout);
    // Held calls the grace period cut short: complete them (the contract).
    while (st.holds != NULL) {
        held *h = st.holds;
        st.holds = h->next;
        ev_timer_stop(st.loop, &h->t);
        rr_call_reply(h->call, &h->reply.base);
        free(h);
    }
    rr_server_free(st.srv);
    rr_kv_free(kv);
    ev_loop_destroy(st.loop);
    return 0;
}
