// SPDX-License-Identifier: MIT
//
// fault_server.c -- rawrpc-fault-server, the server process the fault
// suite starts, kills and restarts.  It serves rrtest.Test:
//   Echo  records one execution of the call named by req.text, replies;
//   Hold  records it too, and replies after req.data.len milliseconds.
// On SIGTERM it shuts down gracefully and prints one JSON line: how many
// executions, how many of them repeated a name already executed, and the
// sum of the names' 64-bit hashes (the client sums its successes the same
// way, so the two sets can be compared).
//
//   rawrpc-fault-server [--host H] [--port P] [--heartbeat S]
//                       [--grace S] [--nofile N]
// prints "port N" once listening.  Logs go to stderr.

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "namehash.h"
#include "rawrpc/rawrpc.h"
#include "testmsg.pb-c.h"

typedef struct held {
    ev_timer t;
    rr_call *call;
    Rrtest__Echo reply;
    struct held *next, *prev;
} held;

typedef struct state {
    struct ev_loop *loop;
    rr_server *srv;
    uint64_t *seen; // open addressing of name hashes; 0 = empty
    size_t cap, n;
    unsigned long long executions, duplicates;
    uint64_t sum;
    held *holds;
    double grace;
    bool stopping;
} state;

// Counts one execution of the call named text.
static void
executed(state *st, const char *text)
{
    uint64_t h = fault_name_hash(text);

    st->executions++;
    st->sum += h;
    if ((st->n + 1) * 2 > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 1024;
        uint64_t *t = calloc(cap, sizeof(*t));
        if (t == NULL)
            abort();
        for (size_t i = 0; i < st->cap; i++) {
            if (st->seen[i] == 0)
                continue;
            size_t j = st->seen[i] & (cap - 1);
            while (t[j] != 0)
                j = (j + 1) & (cap - 1);
            t[j] = st->seen[i];
        }
        free(st->seen);
        st->seen = t;
        st->cap = cap;
    }
    size_t j = h & (st->cap - 1);
    while (st->seen[j] != 0 && st->seen[j] != h)
        j = (j + 1) & (st->cap - 1);
    if (st->seen[j] == h) {
        st->duplicates++;
        return;
    }
    st->seen[j] = h;
    st->n++;
}

static void
h_echo(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    executed(arg, ((const Rrtest__Echo *) req)->text);
    rr_call_reply(call, req);
}

static void
held_done(state *st, held *h)
{
    ev_timer_stop(st->loop, &h->t);
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        st->holds = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    free(h);
}

static void
held_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    held *h = (held *) w;
    state *st = w->data;

    rr_call_reply(h->call, &h->reply.base);
    held_done(st, h);
}

static void
h_hold(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    state *st = arg;
    const Rrtest__Echo *e = (const Rrtest__Echo *) req;
    held *h = calloc(1, sizeof(*h));

    if (h == NULL)
        abort();
    executed(st, e->text);
    rrtest__echo__init(&h->reply);
    h->reply.text = e->text; // the request lives until the reply is sent
    h->call = call;
    ev_timer_init(&h->t, held_cb, (double) e->data.len / 1000.0, 0.);
    h->t.data = st;
    ev_timer_start(st->loop, &h->t);
    h->next = st->holds;
    if (h->next != NULL)
        h->next->prev = h;
    st->holds = h;
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

    // Stays installed: a second SIGTERM must not kill us mid-shutdown.
    if (!st->stopping) {
        st->stopping = true;
        rr_server_shutdown(st->srv, st->grace, shutdown_done, st);
    }
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"heartbeat", required_argument, NULL, 'b'},
        {"grace", required_argument, NULL, 'g'},
        {"nofile", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    static state st;
    rr_handler_cb handlers[8] = {h_echo, h_hold};
    const char *host = "127.0.0.1";
    const char *port = "0";
    rr_server_opts o;
    char addr[128];
    int c;

    st.loop = EV_DEFAULT;
    st.grace = 10;
    rr_server_opts_init(&o);
    rr_log_set(NULL, NULL, RR_LOG_INFO);
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'b':
            o.heartbeat_interval = strtod(optarg, NULL);
            o.heartbeat_timeout = o.heartbeat_interval;
            break;
        case 'g':
            st.grace = strtod(optarg, NULL);
            break;
        case 'n': {
            struct rlimit rl = {strtoul(optarg, NULL, 10),
                                strtoul(optarg, NULL, 10)};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                perror("setrlimit");
            break;
        }
        default:
            fprintf(stderr, "usage: see tests/fault/fault_server.c\n");
            return 2;
        }
    }
    snprintf(addr, sizeof(addr), "%s:%s", host, port);
    if (rr_server_new(&st.srv, st.loop, &o) != RR_OK ||
        rr_server_add_service(st.srv, &rrtest__test__descriptor, handlers,
                              &st) != RR_OK ||
        rr_server_listen(st.srv, addr) != RR_OK) {
        fprintf(stderr, "rawrpc-fault-server: cannot listen on %s\n", addr);
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

    // Held calls the grace period cut short: complete them (the contract).
    while (st.holds != NULL) {
        held *h = st.holds;
        st.holds = h->next;
        ev_timer_stop(st.loop, &h->t);
        rr_call_reply(h->call, &h->reply.base);
        free(h);
    }
    printf("{\"executions\": %llu, \"duplicates\": %llu, \"sum\": %llu}\n",
           st.executions, st.duplicates, (unsigned long long) st.sum);
    fflush(stdout);
    rr_server_free(st.srv);
    free(st.seen);
    return 0;
}
