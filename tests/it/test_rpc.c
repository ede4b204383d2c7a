// SPDX-License-Identifier: MIT
//
// test_rpc.c -- server and channel together over loopback: calls,
// statuses, deadlines, cancellation, late replies, metadata, limits,
// replies from threads, deadline propagation and re-entrancy.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/channel.h"
#include "transport/conn.h"
#include "harness.h"
#include "codec/preface.h"
#include "rawrpc/v1/wire.pb-c.h"

static void
test_rpc_echo(void **state)
{
    fixture *fx = *state;
    outcome o;

    assert_int_equal(fx_call(fx, M_ECHO, "hello", NULL, &o), RR_OK);
    assert_int_equal(o.runs, 0); // never before the call returns
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_OK);
    assert_string_equal(o.text, "hello");
    assert_string_equal(o.message, "");
    assert_true(rr_channel_connected(fx->ch));
}

static void
sync_inside_cb(const rr_result *res, void *arg)
{
    fixture *fx = arg;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    ProtobufCMessage *reply = NULL;

    (void) res;
    // From inside a loop callback the blocking API must refuse.
    assert_int_equal(rr_channel_call_sync(fx->ch, &test_methods[M_ECHO],
                                          &req.base, NULL, &reply, NULL),
                     RR_STATUS_FAILED_PRECONDITION);
    assert_null(reply);
    fx->cancels = -1; // "ran" marker
}

static void
test_rpc_sync(void **state)
{
    fixture *fx = *state;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    char text[] = "blocking";
    ProtobufCMessage *reply = NULL;
    char *msg = NULL;

    req.text = text;
    assert_int_equal(rr_channel_call_sync(fx->ch, &test_methods[M_ECHO],
                                          &req.base, NULL, &reply, &msg),
                     RR_STATUS_OK);
    assert_non_null(reply);
    assert_string_equal(((Rrtest__Echo *) reply)->text, "blocking");
    protobuf_c_message_free_unpacked(reply, NULL);
    free(msg);

    assert_int_equal(rr_channel_call_sync(fx->ch, &test_methods[M_FAIL],
                                          &req.base, NULL, &reply, &msg),
                     RR_STATUS_NOT_FOUND);
    assert_null(reply);
    assert_string_equal(msg, "no such key");
    free(msg);

    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     NULL, sync_inside_cb, fx, NULL),
                     RR_OK);
    while (fx->cancels != -1 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(fx->cancels, -1);
}

static void
test_rpc_thousand_calls_out_of_order(void **state)
{
    fixture *fx = *state;
    enum { N = 1000 };
    outcome *o = calloc(N, sizeof(*o));

    assert_non_null(o);
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof(text), "%d", i);
        assert_int_equal(fx_call(fx, M_HOLD, text, NULL, &o[i]), RR_OK);
    }
    while (fx->n_held < N && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(fx->n_held, N);
    // Reply in reverse order of arrival, each with its own request.
    for (int i = N - 1; i >= 0; i--) {
        rr_call_reply(fx->held[i], &fx->held_req[i]->base);
        fx->held[i] = NULL;
    }
    for (int i = 0; i < N; i++) {
        char text[16];
        fx_wait(fx, &o[i]);
        snprintf(text, sizeof(text), "%d", i);
        assert_int_equal(o[i].status, RR_STATUS_OK);
        assert_string_equal(o[i].text, text);
    }
    free(o);
}

static void
test_rpc_error_status_and_message(void **state)
{
    fixture *fx = *state;
    outcome o;

    fx_call(fx, M_FAIL, "k", NULL, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_NOT_FOUND);
    assert_string_equal(o.message, "no such key");
    assert_string_equal(o.text, "");
}

static void
test_rpc_unknown_method_keeps_connection(void **state)
{
    fixture *fx = *state;
    const rr_method nope = {"/rrtest.Test/Nope", &rrtest__echo__descriptor,
                            &rrtest__echo__descriptor};
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    outcome o, o2, o3;

    memset(&o, 0, sizeof(o));
    assert_int_equal(
        rr_channel_call(fx->ch, &nope, &req.base, NULL, result_cb, &o, NULL),
        RR_OK);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_UNIMPLEMENTED);
    assert_string_equal(o.message, "unknown method /rrtest.Test/Nope");
    // A method registered with a NULL handler is unimplemented too.
    fx_call(fx, M_UNSET, "x", NULL, &o2);
    fx_wait(fx, &o2);
    assert_int_equal(o2.status, RR_STATUS_UNIMPLEMENTED);
    // The connection stayed up.
    fx_call(fx, M_ECHO, "still here", NULL, &o3);
    fx_wait(fx, &o3);
    assert_int_equal(o3.status, RR_STATUS_OK);
}

// The server tries the method it found last first, by the bytes of its
// name: neighbours of that name, other methods in between, the same name
// with user metadata, all in one batch, must each reach their own.
static void
test_rpc_methods_interleaved_in_one_batch(void **state)
{
    fixture *fx = *state;
    const rr_metadata md = {"k", (const uint8_t *) "v", 1};
    const rr_call_opts with_md = {.metadata = &md, .n_metadata = 1};
    const rr_call_opts with_timeout = {.timeout = 30};
    const rr_method shorter = {"/rrtest.Test/Ech", &rrtest__echo__descriptor,
                               &rrtest__echo__descriptor};
    const rr_method longer = {"/rrtest.Test/Echoo", &rrtest__echo__descriptor,
                              &rrtest__echo__descriptor};
    const struct {
        const rr_method *m;
        const char *text;
        const rr_call_opts *opts;
        rr_status status;
        const char *want; // the reply's text, or the status message
    } calls[] = {
        {&test_methods[M_ECHO], "a", NULL, RR_STATUS_OK, "a"},
        {&test_methods[M_ECHO], "b", &with_timeout, RR_STATUS_OK, "b"},
        {&shorter, "", NULL, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.Test/Ech"},
        {&longer, "", NULL, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.Test/Echoo"},
        {&test_methods[M_FAIL], "k", NULL, RR_STATUS_NOT_FOUND, "no such key"},
        {&test_methods[M_UNSET], "x", NULL, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.Test/Unset"},
        {&test_methods[M_UNSET], "x", NULL, RR_STATUS_UNIMPLEMENTED,
         "unknown method /rrtest.Test/Unset"},
        {&test_methods[M_META], "k", NULL, RR_STATUS_OK, "(absent)"},
        {&test_methods[M_META], "k", &with_md, RR_STATUS_OK, "v"},
        {&test_methods[M_ECHO], "c", NULL, RR_STATUS_OK, "c"},
    };
    enum { N = sizeof(calls) / sizeof(calls[0]) };
    Rrtest__Echo req[N];
    outcome o[N];

    memset(o, 0, sizeof(o));
    for (size_t i = 0; i < N; i++) {
        rrtest__echo__init(&req[i]);
        req[i].text = (char *) calls[i].text;
        assert_int_equal(rr_channel_call(fx->ch, calls[i].m, &req[i].base,
                                         calls[i].opts, result_cb, &o[i], NULL),
                         RR_OK);
    }
    for (size_t i = 0; i < N; i++) {
        fx_wait(fx, &o[i]);
        assert_int_equal(o[i].status, calls[i].status);
        assert_string_equal(calls[i].status == RR_STATUS_OK ? o[i].text
                                                            : o[i].message,
                            calls[i].want);
    }
}

// The server sends its preface and SETTINGS from the accept itself, not
// from a write watcher a wake-up later: one loop iteration, and the bytes
// are on their way.  (The poll only bounds a failure; the loop is not run
// while it waits, so only bytes already sent can arrive.)
static void
test_rpc_preface_goes_out_at_accept(void **state)
{
    fixture *fx = *state;
    rawpeer p;
    uint8_t buf[64];

    rawpeer_connect(&p, fx);
    ev_io_stop(fx->loop, &p.io); // read here, not by the loop
    ev_run(fx->loop, EVRUN_ONCE);
    struct pollfd pfd = {.fd = p.fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    ssize_t n = recv(p.fd, buf, sizeof(buf), MSG_DONTWAIT);
    assert_true(n >= (ssize_t) RR_PREFACE_SIZE);
    assert_memory_equal(buf, rr__magic, RR_MAGIC_SIZE);
    rawpeer_close(&p);
}

static void
test_rpc_bad_arguments_never_call_back(void **state)
{
    fixture *fx = *state;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    outcome o = {0};
    // A request of the wrong message type.
    Rrtest__Echo *wrong = &req;
    const rr_method other = {"/rrtest.Test/Echo",
                             &rawrpc__v1__request_meta__descriptor,
                             &rrtest__echo__descriptor};

    assert_int_equal(rr_channel_call(fx->ch, &other, &wrong->base, NULL,
                                     result_cb, &o, NULL),
                     RR_EINVAL);
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     NULL, NULL, &o, NULL),
                     RR_EINVAL);
    // Metadata over the 8192-byte budget.
    char *big = malloc(9000);
    assert_non_null(big);
    memset(big, 'v', 9000);
    rr_metadata md = {"k", (const uint8_t *) big, 9000};
    rr_call_opts co = {.metadata = &md, .n_metadata = 1};
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     &co, result_cb, &o, NULL),
                     RR_EINVAL);
    free(big);
    fx_run_for(fx, 0.05);
    assert_int_equal(o.runs, 0);
}

static void
test_rpc_metadata_reaches_server(void **state)
{
    fixture *fx = *state;
    rr_metadata md[] = {
        {"auth", (const uint8_t *) "secret", 6},
        {"trace-id", (const uint8_t *) "abc123", 6},
    };
    rr_call_opts co = {.metadata = md, .n_metadata = 2};
    outcome o, o2;

    fx_call(fx, M_META, "trace-id", &co, &o);
    fx_call(fx, M_META, "absent-key", &co, &o2);
    fx_wait(fx, &o);
    fx_wait(fx, &o2);
    assert_string_equal(o.text, "abc123");
    assert_string_equal(o2.text, "(absent)");
}

static void
test_rpc_deadline_both_sides(void **state)
{
    fixture *fx = *state;
    rr_call_opts co = {.timeout = 0.05};
    outcome o, o2;

    fx_call(fx, M_HOLD, "slow", &co, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(fx->n_held, 1);
    // The server cancels it too: its deadline, or the client's CANCEL.
    while (fx->cancels == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(fx->cancels, 1);
    assert_true(rr_call_cancelled(fx->held[0]));
    // The server's deadline came from the 50 ms budget.  Its own timer or
    // the client's CANCEL may win, so it can have a hair left.
    assert_true(rr_call_remaining(fx->held[0]) < 0.05);
    // A reply after the deadline is dropped and its memory freed.
    assert_int_equal(rr_call_reply(fx->held[0], &fx->held_req[0]->base), RR_OK);
    fx->held[0] = NULL;
    // The late answer never completes the next call.
    fx_call(fx, M_ECHO, "next", NULL, &o2);
    fx_wait(fx, &o2);
    assert_string_equal(o2.text, "next");
    fx_run_for(fx, 0.05);
    assert_int_equal(o.runs, 1);
}

static void
test_rpc_cancel_reaches_handler(void **state)
{
    fixture *fx = *state;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    outcome o = {0};
    uint64_t token;

    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_HOLD], &req.base,
                                     NULL, result_cb, &o, &token),
                     RR_OK);
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(rr_channel_cancel(fx->ch, token), RR_OK);
    assert_int_equal(o.runs, 0); // from the loop, not inside cancel
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_CANCELLED);
    assert_int_equal(rr_channel_cancel(fx->ch, token), RR_EINVAL);
    while (fx->cancels == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_true(rr_call_cancelled(fx->held[0]));
}

// The peer's name is read from the connection while it lives, and kept
// by a call that outlives it.
static void
test_rpc_peer_outlives_connection(void **state)
{
    fixture *fx = *state;
    outcome o;
    char peer[80];

    fx_call(fx, M_HOLD, "held", NULL, &o);
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    snprintf(peer, sizeof(peer), "%s", rr_call_peer(fx->held[0]));
    assert_int_equal(strncmp(peer, "127.0.0.1:", 10), 0);
    assert_true(strtol(peer + 10, NULL, 10) > 0);
    // The client goes; the server cancels the call and frees the
    // connection while the handler still holds the call.
    rr_channel_free(fx->ch);
    fx->ch = NULL;
    while (fx->cancels == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(fx->cancels, 1);
    assert_string_equal(rr_call_peer(fx->held[0]), peer);
    assert_int_equal(rr_call_reply(fx->held[0], &fx->held_req[0]->base), RR_OK);
    fx->held[0] = NULL;
    assert_int_equal(o.status, RR_STATUS_UNAVAILABLE);
}

static void
test_rpc_concurrency_limit_queues_calls(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    outcome o[5];

    // A server that takes two calls at a time: the channel learns it from
    // SETTINGS and queues the rest rather than tripping the limit.
    rr_server_opts_init(&so);
    so.max_concurrent_calls = 2;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    fx_call(fx, M_ECHO, "warm-up", NULL, &o[0]);
    fx_wait(fx, &o[0]); // SETTINGS known
    for (int i = 0; i < 5; i++)
        fx_call(fx, M_HOLD, "q", NULL, &o[i]);
    fx_run_for(fx, 0.05);
    assert_int_equal(fx->n_held, 2);
    for (size_t done = 0; done < 5; done++) {
        while (fx->n_held <= done && !fx->guard_fired)
            ev_run(fx->loop, EVRUN_ONCE);
        rr_call_reply(fx->held[done], &fx->held_req[done]->base);
        fx->held[done] = NULL;
    }
    for (int i = 0; i < 5; i++) {
        fx_wait(fx, &o[i]);
        assert_int_equal(o[i].status, RR_STATUS_OK);
    }
}

static void
test_rpc_reply_larger_than_client_limit(void **state)
{
    fixture *fx = *state;
    rr_channel_opts co;
    outcome o;

    rr_channel_opts_init(&co);
    co.max_frame_size = 1024;
    assert_int_equal(fx_restart(fx, NULL, &co), 0);
    fx_call(fx, M_BIG, "5000", NULL, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_RESOURCE_EXHAUSTED);
    assert_string_equal(o.message,
                        "reply of 5003 bytes exceeds the client's 1024-byte "
                        "limit");
    fx_call(fx, M_BIG, "900", NULL, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_OK);
    assert_int_equal(o.data_len, 900);
}

static void
test_rpc_request_larger_than_server_limit(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    outcome o = {0};
    uint8_t *data = calloc(1, 4000);

    rr_server_opts_init(&so);
    so.max_frame_size = 2048;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    assert_non_null(data);
    req.data.data = data;
    req.data.len = 4000;
    // Queued until the server's SETTINGS are known, then refused locally:
    // the connection is never put at risk.
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     NULL, result_cb, &o, NULL),
                     RR_OK);
    free(data);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_RESOURCE_EXHAUSTED);
    assert_string_equal(o.message, "request of 4003 bytes exceeds the "
                                   "server's 2048-byte limit");
    fx_call(fx, M_ECHO, "ok", NULL, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_OK);
}

static void *
thread_reply(void *arg)
{
    rr_call *call = arg;
    Rrtest__Echo out = RRTEST__ECHO__INIT;
    char text[] = "from a thread";

    out.text = text;
    if (rr_call_cancelled(call))
        rr_call_fail_from_thread(call, RR_STATUS_CANCELLED, "gave up");
    else
        rr_call_reply_from_thread(call, &out.base);
    return NULL;
}

typedef struct threads {
    pthread_t t[16];
    int n;
} threads;

static void
h_thread(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) req;
    fixture *fx = arg;
    threads *th = fx->user;

    assert_true(th->n < 16);
    assert_int_equal(pthread_create(&th->t[th->n++], NULL, thread_reply, call),
                     0);
}

static void
test_rpc_reply_from_threads(void **state)
{
    fixture *fx = *state;
    threads th = {.n = 0};
    outcome o[16];

    fx->user = &th;
    fx->handlers[M_THREAD] = h_thread;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    for (int i = 0; i < 16; i++)
        fx_call(fx, M_THREAD, "t", NULL, &o[i]);
    for (int i = 0; i < 16; i++) {
        fx_wait(fx, &o[i]);
        assert_int_equal(o[i].status, RR_STATUS_OK);
        assert_string_equal(o[i].text, "from a thread");
    }
    for (int i = 0; i < th.n; i++)
        pthread_join(th.t[i], NULL);
}

// Relay: calls Hold on the same server with the incoming call as parent,
// and completes the parent with the child's outcome.
typedef struct relay {
    rr_call *parent;
    outcome child;
    double parent_left;
} relay;

static void
relay_done(const rr_result *res, void *arg)
{
    relay *r = arg;

    result_cb(res, &r->child);
    rr_call_fail(r->parent,
                 res->status == RR_STATUS_OK ? RR_STATUS_ABORTED : res->status,
                 res->message);
}

static void
h_relay(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fixture *fx = arg;
    relay *r = fx->user;
    rr_call_opts co = {.parent = call};

    r->parent = call;
    r->parent_left = rr_call_remaining(call);
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_HOLD], req, &co,
                                     relay_done, r, NULL),
                     RR_OK);
}

static void
test_rpc_deadline_and_cancel_propagate(void **state)
{
    fixture *fx = *state;
    relay r = {0};
    outcome o = {0};
    uint64_t token;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    rr_call_opts co = {.timeout = 10.0};

    fx->user = &r;
    fx->handlers[M_RELAY] = h_relay;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);

    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_RELAY], &req.base,
                                     &co, result_cb, &o, &token),
                     RR_OK);
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    // The child carries the parent's remaining budget, never more.
    double child_left = rr_call_remaining(fx->held[0]);
    assert_true(r.parent_left <= 10.0 && r.parent_left > 9.0);
    assert_true(child_left <= r.parent_left);
    assert_true(child_left > 8.0);

    // Cancelling the outer call cancels the parent on the server, which
    // cancels the child, which the held handler sees.
    assert_int_equal(rr_channel_cancel(fx->ch, token), RR_OK);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_CANCELLED);
    while ((r.child.runs == 0 || fx->cancels == 0) && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(r.child.status, RR_STATUS_CANCELLED);
    assert_int_equal(fx->cancels, 1);
}

// Output is written by one watcher per loop once the callbacks under way
// are done (transport/scratch.h).  A call started from the user's own
// prepare watcher, at any priority, also after running the loop nested
// from there, must still go out at once: not wait, with the loop asleep,
// for an unrelated event.
typedef struct prep_call {
    fixture *fx;
    ev_prepare w;
    ev_timer late; // fires only if the request sat in the output
    bool armed, timed_out;
    bool nest; // run the loop once, nested, before the call
    outcome o;
} prep_call;

static void
prep_call_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    prep_call *pc =
        (prep_call *) (void *) ((char *) w - offsetof(prep_call, w));

    (void) revents;
    if (!pc->armed)
        return;
    ev_prepare_stop(loop, w);
    if (pc->nest) // its own round of callbacks runs what was pending
        ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(fx_call(pc->fx, M_ECHO, "prepared", NULL, &pc->o), RR_OK);
}

static void
prepared_call(fixture *fx, int priority, bool nest)
{
    prep_call pc = {.fx = fx, .nest = nest};
    outcome first;

    ev_prepare_init(&pc.w, prep_call_cb);
    ev_set_priority(&pc.w, priority);
    ev_prepare_start(fx->loop, &pc.w);
    // Ours is older than the new connections (a flush watcher started at
    // the first of them would run before it at the same priority: libev
    // runs the newest first).
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    assert_int_equal(fx_call(fx, M_ECHO, "connect", NULL, &first), RR_OK);
    fx_wait(fx, &first);
    assert_int_equal(first.status, RR_STATUS_OK);
    // Nothing else pending (deferred frees, deliveries) may wake the loop:
    // only the flush can send the call.
    for (int i = 0; i < 8; i++)
        ev_run(fx->loop, EVRUN_NOWAIT);
    pc.armed = true; // straight into the open connection's output
    ev_timer_init(&pc.late, fx_flag_cb, 2.0, 0.);
    pc.late.data = &pc.timed_out;
    ev_timer_start(fx->loop, &pc.late);
    while (pc.o.runs == 0 && !pc.timed_out && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    ev_timer_stop(fx->loop, &pc.late);
    ev_prepare_stop(fx->loop, &pc.w);
    assert_false(pc.timed_out);
    assert_int_equal(pc.o.runs, 1);
    assert_int_equal(pc.o.status, RR_STATUS_OK);
    assert_string_equal(pc.o.text, "prepared");
}

static void
test_rpc_call_from_prepare_watchers(void **state)
{
    fixture *fx = *state;

    for (int nest = 0; nest < 2; nest++) {
        prepared_call(fx, 0, nest);         // runs before the flush
        prepared_call(fx, EV_MINPRI, nest); // after it, in the same phase
        prepared_call(fx, EV_MAXPRI, nest);
    }
}

static void
call_again_cb(const rr_result *res, void *arg)
{
    fixture *fx = arg;
    static outcome second;

    assert_int_equal(res->status, RR_STATUS_OK);
    // A new call from inside a reply callback.
    assert_int_equal(fx_call(fx, M_ECHO, "again", NULL, &second), RR_OK);
    fx->user = &second;
}

static void
free_channel_cb(const rr_result *res, void *arg)
{
    fixture *fx = arg;

    (void) res;
    rr_channel_free(fx->ch); // from inside its own callback
    fx->ch = NULL;
}

static void
test_rpc_reentrancy_from_callbacks(void **state)
{
    fixture *fx = *state;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    outcome held = {0};

    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     NULL, call_again_cb, fx, NULL),
                     RR_OK);
    while (fx->user == NULL && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    fx_wait(fx, fx->user);
    assert_string_equal(((outcome *) fx->user)->text, "again");

    // Free the channel from a callback while another call is pending: the
    // pending one completes with UNAVAILABLE, exactly once.
    fx_call(fx, M_HOLD, "pending", NULL, &held);
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     NULL, free_channel_cb, fx, NULL),
                     RR_OK);
    fx_wait(fx, &held);
    assert_int_equal(held.status, RR_STATUS_UNAVAILABLE);
    assert_string_equal(held.message, "channel freed");
    assert_null(fx->ch);
}

typedef struct nested_run {
    fixture *fx;
    outcome inner[2];
    bool checked;
} nested_run;

#define OUTER_TEXT "the outer reply, which must outlive the nested ones"

static void
nested_loop_cb(const rr_result *res, void *arg)
{
    nested_run *n = arg;
    const Rrtest__Echo *r = (const Rrtest__Echo *) res->reply;

    assert_int_equal(res->status, RR_STATUS_OK);
    assert_string_equal(r->text, OUTER_TEXT);
    // The loop runs again from inside the callback while this reply is in
    // use: the replies that arrive meanwhile must not reuse its memory.
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fx_call(n->fx, M_ECHO, "a nested reply over it", NULL,
                                 &n->inner[i]),
                         RR_OK);
        fx_wait(n->fx, &n->inner[i]);
        assert_int_equal(n->inner[i].status, RR_STATUS_OK);
    }
    assert_string_equal(r->text, OUTER_TEXT);
    n->checked = true;
}

static void
test_rpc_nested_loop_in_callback_keeps_reply(void **state)
{
    fixture *fx = *state;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    nested_run n = {.fx = fx};
    static char outer[] = OUTER_TEXT;

    req.text = outer;
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     NULL, nested_loop_cb, &n, NULL),
                     RR_OK);
    fx_run_until(fx, &n.checked);
    assert_string_equal(n.inner[1].text, "a nested reply over it");
}

static void
h_free_server(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fixture *fx = arg;

    (void) req;
    rr_server_free(fx->srv); // from inside a handler
    fx->srv = NULL;
    rr_call_fail(call, RR_STATUS_INTERNAL, "gone"); // only frees it now
}

static void
test_rpc_server_freed_in_handler(void **state)
{
    fixture *fx = *state;
    outcome o;

    fx->handlers[M_ECHO] = h_free_server;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    fx_call(fx, M_ECHO, "x", NULL, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_UNAVAILABLE);
}

static void
test_rpc_two_hundred_connections(void **state)
{
    fixture *fx = *state;
    enum { N = 200 };
    rr_channel *chs[N];
    outcome o[N];
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    char text[] = "many";

    req.text = text;
    for (int i = 0; i < N; i++) {
        assert_int_equal(rr_channel_new(&chs[i], fx->loop, fx->target, NULL),
                         RR_OK);
        memset(&o[i], 0, sizeof(o[i]));
        assert_int_equal(rr_channel_call(chs[i], &test_methods[M_ECHO],
                                         &req.base, NULL, result_cb, &o[i],
                                         NULL),
                         RR_OK);
    }
    for (int i = 0; i < N; i++) {
        fx_wait(fx, &o[i]);
        assert_int_equal(o[i].status, RR_STATUS_OK);
    }
    for (int i = 0; i < N; i++)
        rr_channel_free(chs[i]);
}

static void
test_rpc_unix_and_ipv6(void **state)
{
    fixture *fx = *state;
    char path[64], target[80];
    rr_channel *ch;
    outcome o = {0};
    Rrtest__Echo req = RRTEST__ECHO__INIT;

    snprintf(path, sizeof(path), "/tmp/rawrpc-test-%d.sock", (int) getpid());
    unlink(path);
    snprintf(target, sizeof(target), "unix:%s", path);
    assert_int_equal(rr_server_listen(fx->srv, target), RR_OK);
    assert_int_equal(rr_channel_new(&ch, fx->loop, target, NULL), RR_OK);
    rr_channel_call(ch, &test_methods[M_ECHO], &req.base, NULL, result_cb, &o,
                    NULL);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_OK);
    rr_channel_free(ch);

    // IPv6 loopback, when the machine has it.
    rr_server *s6;
    assert_int_equal(rr_server_new(&s6, fx->loop, NULL), RR_OK);
    assert_int_equal(
        rr_server_add_service(s6, &rrtest__test__descriptor, fx->handlers, fx),
        RR_OK);
    if (rr_server_listen(s6, "[::1]:0") == RR_OK) {
        snprintf(target, sizeof(target), "[::1]:%u",
                 (unsigned) rr_server_port(s6));
        assert_int_equal(rr_channel_new(&ch, fx->loop, target, NULL), RR_OK);
        memset(&o, 0, sizeof(o));
        rr_channel_call(ch, &test_methods[M_ECHO], &req.base, NULL, result_cb,
                        &o, NULL);
        fx_wait(fx, &o);
        assert_int_equal(o.status, RR_STATUS_OK);
        rr_channel_free(ch);
    }
    rr_server_free(s6);
    rr_server_free(fx->srv); // unlinks the socket file
    fx->srv = NULL;
    assert_int_equal(access(path, F_OK), -1);
}

typedef struct cancel_other {
    rr_channel *ch;
    uint64_t victim;
    int rv;
} cancel_other;

static void
cancel_other_cb(const rr_result *res, void *arg)
{
    cancel_other *c = arg;

    (void) res;
    c->rv = rr_channel_cancel(c->ch, c->victim); // from inside a callback
}

static void
test_rpc_cancel_from_callback(void **state)
{
    fixture *fx = *state;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    outcome victim = {0};
    cancel_other c = {.ch = fx->ch, .rv = 1};

    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_HOLD], &req.base,
                                     NULL, result_cb, &victim, &c.victim),
                     RR_OK);
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     NULL, cancel_other_cb, &c, NULL),
                     RR_OK);
    fx_wait(fx, &victim);
    assert_int_equal(c.rv, RR_OK);
    assert_int_equal(victim.status, RR_STATUS_CANCELLED);
}

static void
test_rpc_connection_limit(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rr_channel *second;
    outcome o, o2 = {0};
    Rrtest__Echo req = RRTEST__ECHO__INIT;

    rr_server_opts_init(&so);
    so.max_connections = 1;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    fx_call(fx, M_ECHO, "first", NULL, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_OK);
    // A second connection is accepted and closed at once.
    assert_int_equal(rr_channel_new(&second, fx->loop, fx->target, NULL),
                     RR_OK);
    rr_channel_call(second, &test_methods[M_ECHO], &req.base, NULL, result_cb,
                    &o2, NULL);
    fx_wait(fx, &o2);
    assert_int_equal(o2.status, RR_STATUS_UNAVAILABLE);
    rr_channel_free(second);
    fx_call(fx, M_ECHO, "first still served", NULL, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_OK);
}

static void
test_rpc_channel_default_timeout(void **state)
{
    fixture *fx = *state;
    rr_channel_opts co;
    rr_call_opts longer = {.timeout = 30.0};
    outcome o, o2;

    rr_channel_opts_init(&co);
    co.default_timeout = 0.05;
    assert_int_equal(fx_restart(fx, NULL, &co), 0);
    fx_call(fx, M_HOLD, "uses the default", NULL, &o);
    fx_call(fx, M_HOLD, "sets its own", &longer, &o2);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_DEADLINE_EXCEEDED);
    fx_run_for(fx, 0.1);
    assert_int_equal(o2.runs, 0); // its own 30 s still running
    // Free the channel while o2 is still in scope: it completes o2.
    rr_channel_free(fx->ch);
    fx->ch = NULL;
    assert_int_equal(o2.runs, 1);
    assert_int_equal(o2.status, RR_STATUS_UNAVAILABLE);
}

static void
h_wrong_type(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    Rawrpc__V1__RequestMeta not_an_echo = RAWRPC__V1__REQUEST_META__INIT;

    (void) req;
    (void) arg;
    assert_int_equal(rr_call_reply(call, &not_an_echo.base), RR_EINVAL);
}

static void
test_rpc_reply_of_wrong_type_is_internal(void **state)
{
    fixture *fx = *state;
    outcome o;

    fx->handlers[M_ECHO] = h_wrong_type;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    fx_call(fx, M_ECHO, "x", NULL, &o);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_INTERNAL);
    assert_string_equal(o.message, "reply of the wrong type");
}

// Finds the TCP socket of this process connected to port (the channel's
// side) and checks the options rawrpc promises.
static void
expect_socket_options(uint16_t port, int user_timeout_ms, int keepidle)
{
    int found = 0;

    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        memset(&sin, 0, sizeof(sin));
        if (getpeername(fd, (struct sockaddr *) &sin, &len) != 0 ||
            sin.sin_family != AF_INET || ntohs(sin.sin_port) != port)
            continue;
        int v = 0;
        socklen_t vl = sizeof(v);
        getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl);
        assert_int_equal(v, 1);
        getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, &vl);
        assert_int_equal(v, user_timeout_ms);
        getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &vl);
        assert_int_equal(v, keepidle > 0);
        if (keepidle > 0) {
            getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &vl);
            assert_int_equal(v, keepidle);
        }
        found++;
    }
    assert_int_equal(found, 1);
}

static void
test_rpc_socket_options(void **state)
{
    fixture *fx = *state;
    rr_channel_opts co;
    outcome o;

    rr_channel_opts_init(&co);
    co.heartbeat_interval = 7.0;
    co.heartbeat_timeout = 3.5;
    co.tcp_keepalive = true;
    assert_int_equal(fx_restart(fx, NULL, &co), 0);
    fx_call(fx, M_ECHO, "x", NULL, &o);
    fx_wait(fx, &o);
    // TCP_USER_TIMEOUT follows the heartbeat timeout; keepalive starts
    // after the heartbeat interval.
    expect_socket_options(fx->port, 3500, 7);

    rr_channel_opts_init(&co); // defaults: heartbeat 30 s / 20 s, no keepalive
    assert_int_equal(fx_restart(fx, NULL, &co), 0);
    fx_call(fx, M_ECHO, "x", NULL, &o);
    fx_wait(fx, &o);
    expect_socket_options(fx->port, 20000, 0);
}

static void
test_rpc_call_ids_run_out(void **state)
{
    fixture *fx = *state;
    outcome o[4];

    fx_call(fx, M_ECHO, "first", NULL, &o[0]);
    fx_wait(fx, &o[0]);
    // Two IDs left on this connection: 0xFFFFFFFE and 0xFFFFFFFF.  The
    // third call must go out on a new connection, never reusing an ID.
    assert_int_equal(rr__channel_set_next_id(fx->ch, 0xFFFFFFFEu), RR_OK);
    for (int i = 1; i < 4; i++)
        fx_call(fx, M_ECHO, i == 3 ? "fresh" : "old", NULL, &o[i]);
    for (int i = 1; i < 4; i++) {
        fx_wait(fx, &o[i]);
        assert_int_equal(o[i].status, RR_STATUS_OK);
    }
    assert_string_equal(o[3].text, "fresh");
    fx_call(fx, M_ECHO, "after", NULL, &o[0]);
    fx_wait(fx, &o[0]);
    assert_int_equal(o[0].status, RR_STATUS_OK);
}

static void
test_rpc_nothing_listening(void **state)
{
    fixture *fx = *state;
    rr_channel *ch;
    rr_channel_opts co;
    outcome o = {0}, o2 = {0};
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    rr_call_opts wait = {.wait_for_ready = true, .timeout = 0.2};
    char target[64];

    // A port that was just free: nobody listens there.
    snprintf(target, sizeof(target), "127.0.0.1:%u", (unsigned) fx->port);
    rr_server_free(fx->srv);
    fx->srv = NULL;
    rr_channel_opts_init(&co);
    co.backoff_initial = 0.02;
    assert_int_equal(rr_channel_new(&ch, fx->loop, target, &co), RR_OK);
    // A call made before the channel ever connected: queued for the first
    // attempt, then failed cleanly (protobuf-c-rpc crashes here).
    rr_channel_call(ch, &test_methods[M_ECHO], &req.base, NULL, result_cb, &o,
                    NULL);
    // Wait-for-ready keeps trying until its deadline.
    rr_channel_call(ch, &test_methods[M_ECHO], &req.base, &wait, result_cb, &o2,
                    NULL);
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_UNAVAILABLE);
    assert_non_null(strstr(o.message, "Connection refused"));
    assert_int_equal(o2.runs, 0);
    fx_wait(fx, &o2);
    assert_int_equal(o2.status, RR_STATUS_DEADLINE_EXCEEDED);
    rr_channel_free(ch);
}

// ------------------------------------------------------- several loops

enum { LOOPS = 3, LOOP_CHANNELS = 6, LOOP_CALLS = 4 };

typedef struct loop_seen {
    pthread_mutex_t mu;
    pthread_t threads[LOOPS + 1];
    int n_threads;
} loop_seen;

// Answers with the index of the thread it runs on, in order of first
// appearance.
static void
h_which_loop(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fixture *fx = arg;
    loop_seen *seen = fx->user;
    int i;
    char text[16];

    (void) req;
    pthread_mutex_lock(&seen->mu);
    for (i = 0; i < seen->n_threads; i++) {
        if (pthread_equal(seen->threads[i], pthread_self()))
            break;
    }
    if (i == seen->n_threads && i < LOOPS + 1)
        seen->threads[seen->n_threads++] = pthread_self();
    pthread_mutex_unlock(&seen->mu);
    snprintf(text, sizeof(text), "%d", i);
    Rrtest__Echo e = RRTEST__ECHO__INIT;
    e.text = text;
    rr_call_reply(call, &e.base);
}

static void
loops_shut(rr_server *srv, void *arg)
{
    (void) srv;
    *(bool *) arg = true;
}

// With loops = 3 the server runs three loops: connections are spread
// round-robin (two channels each), every call of one connection runs on
// that connection's loop, and a shutdown completes on all of them.
static void
test_rpc_server_loops(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    // Static: the loops' threads outlive this frame until the teardown.
    static loop_seen seen;
    rr_channel *chs[LOOP_CHANNELS];
    outcome o[LOOP_CHANNELS][LOOP_CALLS];
    int per_loop[LOOPS + 1] = {0};
    bool shut = false;

    seen.n_threads = 0;
    pthread_mutex_init(&seen.mu, NULL);
    fx->user = &seen;
    fx->handlers[M_ECHO] = h_which_loop;
    rr_server_opts_init(&so);
    so.loops = LOOPS;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    // The extra loops' threads read the method table: no more services.
    assert_int_equal(rr_server_add_service(fx->srv, &rrtest__test__descriptor,
                                           fx->handlers, fx),
                     RR_EINVAL);

    memset(o, 0, sizeof(o));
    for (int c = 0; c < LOOP_CHANNELS; c++) {
        assert_int_equal(rr_channel_new(&chs[c], fx->loop, fx->target, NULL),
                         RR_OK);
        // One call first, so the connections are accepted in order.
        Rrtest__Echo req = RRTEST__ECHO__INIT;
        assert_int_equal(rr_channel_call(chs[c], &test_methods[M_ECHO],
                                         &req.base, NULL, result_cb, &o[c][0],
                                         NULL),
                         RR_OK);
        fx_wait(fx, &o[c][0]);
        for (int k = 1; k < LOOP_CALLS; k++)
            assert_int_equal(rr_channel_call(chs[c], &test_methods[M_ECHO],
                                             &req.base, NULL, result_cb,
                                             &o[c][k], NULL),
                             RR_OK);
    }
    for (int c = 0; c < LOOP_CHANNELS; c++) {
        for (int k = 0; k < LOOP_CALLS; k++) {
            fx_wait(fx, &o[c][k]);
            assert_int_equal(o[c][k].status, RR_STATUS_OK);
            assert_string_equal(o[c][k].text, o[c][0].text); // same loop
        }
        per_loop[strtol(o[c][0].text, NULL, 10)]++;
    }
    assert_int_equal(seen.n_threads, LOOPS);
    for (int i = 0; i < LOOPS; i++)
        assert_int_equal(per_loop[i], LOOP_CHANNELS / LOOPS);

    assert_int_equal(rr_server_shutdown(fx->srv, 5.0, loops_shut, &shut),
                     RR_OK);
    fx_run_until(fx, &shut);
    for (int c = 0; c < LOOP_CHANNELS; c++)
        rr_channel_free(chs[c]);
    rr_server_free(fx->srv); // joins the loops' threads
    fx->srv = NULL;
    pthread_mutex_destroy(&seen.mu);
}

int
main(void)
{
#define T(name)                                                                \
    cmocka_unit_test_setup_teardown(name, fx_group_setup, fx_group_teardown)
    const struct CMUnitTest tests[] = {
        T(test_rpc_echo),
        T(test_rpc_sync),
        T(test_rpc_thousand_calls_out_of_order),
        T(test_rpc_error_status_and_message),
        T(test_rpc_unknown_method_keeps_connection),
        T(test_rpc_methods_interleaved_in_one_batch),
        T(test_rpc_preface_goes_out_at_accept),
        T(test_rpc_bad_arguments_never_call_back),
        T(test_rpc_metadata_reaches_server),
        T(test_rpc_deadline_both_sides),
        T(test_rpc_cancel_reaches_handler),
        T(test_rpc_peer_outlives_connection),
        T(test_rpc_concurrency_limit_queues_calls),
        T(test_rpc_reply_larger_than_client_limit),
        T(test_rpc_request_larger_than_server_limit),
        T(test_rpc_reply_from_threads),
        T(test_rpc_deadline_and_cancel_propagate),
        T(test_rpc_reentrancy_from_callbacks),
        T(test_rpc_nested_loop_in_callback_keeps_reply),
        T(test_rpc_call_from_prepare_watchers),
        T(test_rpc_server_freed_in_handler),
        T(test_rpc_two_hundred_connections),
        T(test_rpc_unix_and_ipv6),
        T(test_rpc_cancel_from_callback),
        T(test_rpc_connection_limit),
        T(test_rpc_channel_default_timeout),
        T(test_rpc_reply_of_wrong_type_is_internal),
        T(test_rpc_socket_options),
        T(test_rpc_call_ids_run_out),
        T(test_rpc_nothing_listening),
        T(test_rpc_server_loops),
    };
#undef T
    return cmocka_run_group_tests_name("rpc", tests, NULL, NULL);
}
