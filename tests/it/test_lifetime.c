// SPDX-License-Identifier: MIT
//
// test_lifetime.c -- the server's objects against callback orders a user
// may legally produce, and against the user bugs the library promises to
// survive: a connection that dies inside its own error path, a call
// completed twice, a call completed after rr_server_free.

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "codec/preface.h"

// A raw peer with a small receive buffer that advertises the smallest
// MAX_FRAME_SIZE, so the server's output buffer caps near its high-water
// mark plus one small frame.
static void
connect_small(rawpeer *p, fixture *fx)
{
    rr_settings s;
    rr_buf b;

    rawpeer_connect(p, fx);
    int small = 4096;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    rr__settings_init(&s);
    s.max_frame_size = RR_MIN_MAX_FRAME_SIZE;
    rr__buf_init(&b, 1024);
    assert_int_equal(rr__preface_put(&b, 1), RR_OK);
    assert_int_equal(rr__settings_put(&b, &s), RR_OK);
    rawpeer_send(p, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
}

// Resets the connection: a close with a zero linger sends RST.
static void
rawpeer_reset(rawpeer *p)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    p->eof = true;
    rawpeer_close(p);
}

// Finding 3: a handler completes from outside any callback (a timer, as
// kv's Sleep does) to a peer that reset while the output was full.  The
// full buffer fails the connection, whose GOAWAY flush meets the reset
// and closes it; the connection was freed there and then used by its own
// error path.
static void
test_lifetime_connection_fails_inside_its_flush(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rawpeer p;
    uint8_t data[900];

    rr_server_opts_init(&so);
    so.out_high_water = (size_t) 16 * 1024;
    so.out_low_water = 0;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    connect_small(&p, fx);
    for (uint32_t id = 1; id <= 400; id++)
        rawpeer_request(&p, id, test_methods[M_HOLD].full_name, "h", 0);
    while (fx->n_held < 400 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    rawpeer_reset(&p);
    // Replies of 900 bytes, straight from the test as a timer would, until
    // the output fills; the reset is found by that failure's flush.
    memset(data, 'r', sizeof(data));
    Rrtest__Echo out = RRTEST__ECHO__INIT;
    out.data.data = data;
    out.data.len = sizeof(data);
    for (size_t i = 0; i < fx->n_held; i++) {
        assert_int_equal(rr_call_reply(fx->held[i], &out.base), RR_OK);
        fx->held[i] = NULL;
    }
    assert_true(fx->cancels > 0); // the connection did close on the way
    fx_expect_service(fx);
}

// ------------------------------------------------------ double completion

static void
h_twice(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) arg;
    rr_call_reply(call, req);
    rr_call_fail(call, RR_STATUS_INTERNAL, "again"); // the user's bug
}

// Runs one Echo call to a server whose Unset handler completes twice, in
// a child process; returns how the child ended and what it wrote.
static int
run_double_completion(fixture *fx, char *err, size_t errsz)
{
    int pipefd[2];

    assert_int_equal(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        outcome o;
        fx_call(fx, M_UNSET, "twice", NULL, &o);
        for (int i = 0; i < 200 && o.runs == 0; i++)
            ev_run(fx->loop, EVRUN_ONCE);
        // Two more calls: the pool must still hand out distinct calls.
        outcome a, b;
        fx_call(fx, M_ECHO, "a", NULL, &a);
        fx_call(fx, M_ECHO, "b", NULL, &b);
        for (int i = 0; i < 200 && (a.runs == 0 || b.runs == 0); i++)
            ev_run(fx->loop, EVRUN_ONCE);
        alarm(20); // a pool made circular hangs here
        rr_channel_free(fx->ch);
        rr_server_free(fx->srv);
        _exit(a.runs == 1 && b.runs == 1 ? 0 : 3);
    }
    close(pipefd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < errsz && (r = read(pipefd[0], err + n, errsz - 1 - n)) > 0)
        n += (size_t) r;
    err[n] = '\0';
    close(pipefd[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

// Finding 7: a handler that completes its call twice pushed the call into
// the pool twice, so two later calls shared it and rr_server_free looped
// for ever.  Now the second completion is reported ("completed twice")
// and then aborts in a build without NDEBUG; with NDEBUG (RelWithDebInfo,
// the default) it is ignored and everything goes on: the next two calls
// are distinct and the server frees without hanging.  Under ASan the poisoned
// pool catches it first.
static void
test_lifetime_call_completed_twice(void **state)
{
    fixture *fx = *state;
    char err[8192];

    fx->handlers[M_UNSET] = h_twice;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    int st = run_double_completion(fx, err, sizeof(err));
    bool said = strstr(err, "completed twice") != NULL;
    if (strstr(err, "use-after-poison") != NULL)
        return; // ASan's report, and its exit
    assert_true(said);
    if (WIFSIGNALED(st))
        assert_int_equal(WTERMSIG(st), SIGABRT); // not the hang's alarm
    else
        assert_int_equal(WEXITSTATUS(st), 0);
}

// ------------------------------------------ completing after the free

typedef struct late {
    rr_call *call;
    const ProtobufCMessage *req;
    bool reply; // else fail
} late;

static void *
late_thread(void *arg)
{
    late *l = arg;

    if (l->reply)
        rr_call_reply_from_thread(l->call, l->req);
    else
        rr_call_fail_from_thread(l->call, RR_STATUS_ABORTED, "late");
    return NULL;
}

static void
complete_from_thread(late *l)
{
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, late_thread, l), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

// Holds n calls on the fixture's server, then frees the server: the
// header says handlers must still complete such calls, which then only
// frees them.
static void
hold_then_free_server(fixture *fx, size_t n)
{
    outcome o[4];

    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++)
        fx_call(fx, M_HOLD, "held", NULL, &o[i]);
    while (fx->n_held < n && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    rr_channel_free(fx->ch); // its callbacks run now, with o[] alive
    fx->ch = NULL;
    rr_server_free(fx->srv);
    fx->srv = NULL;
}

// Finding 2: rr_call_reply read the freed method table, and
// rr_call_fail_from_thread dereferenced a NULL server.
static void
test_lifetime_complete_after_server_free(void **state)
{
    fixture *fx = *state;

    hold_then_free_server(fx, 4);
    assert_int_equal(rr_call_reply(fx->held[0], &fx->held_req[0]->base), RR_OK);
    rr_call_fail(fx->held[1], RR_STATUS_ABORTED, "late");
    late a = {fx->held[2], &fx->held_req[2]->base, true};
    late b = {fx->held[3], NULL, false};
    complete_from_thread(&a);
    complete_from_thread(&b);
    for (size_t i = 0; i < 4; i++)
        fx->held[i] = NULL;
    // The loop takes the threads' completions; then nothing is left for
    // valgrind or LeakSanitizer to find, and the loop has no watcher of
    // ours: ev_run returns.
    ev_run(fx->loop, 0);
}

// Calls completed by threads but not yet taken by the loop when the
// server is freed were leaked.
static void
test_lifetime_posted_calls_at_free(void **state)
{
    fixture *fx = *state;
    outcome o[2];

    for (size_t i = 0; i < 2; i++)
        fx_call(fx, M_HOLD, "held", NULL, &o[i]);
    while (fx->n_held < 2 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    late a = {fx->held[0], &fx->held_req[0]->base, true};
    late b = {fx->held[1], NULL, false};
    complete_from_thread(&a);
    complete_from_thread(&b);
    fx->held[0] = fx->held[1] = NULL;
    rr_channel_free(fx->ch);
    fx->ch = NULL;
    rr_server_free(fx->srv); // before the loop saw the posts
    fx->srv = NULL;
    ev_run(fx->loop, 0);
}

// ----------------------------------------------------- cancel callbacks

// Holds the call without a cancel callback of its own.
static void
h_keep(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fixture *fx = arg;

    fx->held_req[fx->n_held] = (const Rrtest__Echo *) req;
    fx->held[fx->n_held++] = call;
}

typedef struct cancel_seen {
    int runs;
    bool returned; // rr_call_on_cancel had returned when it ran
    bool complete; // the callback completes the call
} cancel_seen;

static void
on_cancel_note(rr_call *call, void *arg)
{
    cancel_seen *cs = arg;

    cs->runs++;
    assert_true(cs->returned);
    if (cs->complete)
        rr_call_fail(call, RR_STATUS_CANCELLED, "gone");
}

// Makes a call that the server holds (h_keep on M_UNSET, held[0]) and
// the client cancels, and waits until the server has seen the cancel.
static void
hold_cancelled(fixture *fx, outcome *o)
{
    uint64_t token;
    Rrtest__Echo req = RRTEST__ECHO__INIT;

    req.text = (char *) "x";
    memset(o, 0, sizeof(*o));
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_UNSET], &req.base,
                                     NULL, result_cb, o, &token),
                     RR_OK);
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(rr_channel_cancel(fx->ch, token), RR_OK);
    while (!rr_call_cancelled(fx->held[0]) && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
}

// Finding 5: on a call already cancelled, rr_call_on_cancel ran its
// callback before returning.  It runs from the loop now, once, and it
// may complete the call.
static void
test_lifetime_on_cancel_after_the_cancel(void **state)
{
    fixture *fx = *state;
    outcome o;

    fx->handlers[M_UNSET] = h_keep;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    hold_cancelled(fx, &o);

    cancel_seen cs = {.complete = true};
    rr_call_on_cancel(fx->held[0], on_cancel_note, &cs);
    cs.returned = true;
    assert_int_equal(cs.runs, 0);
    while (cs.runs == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(cs.runs, 1);
    fx->held[0] = NULL; // the callback completed it
    fx_wait(fx, &o);
    assert_int_equal(o.status, RR_STATUS_CANCELLED);
}

// A call completed before its deferred cancel callback ran: the callback
// never runs (and touches no freed call).
static void
test_lifetime_completed_before_its_cancel_callback(void **state)
{
    fixture *fx = *state;
    outcome o;

    fx->handlers[M_UNSET] = h_keep;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    hold_cancelled(fx, &o);
    cancel_seen cs = {.returned = true};
    rr_call_on_cancel(fx->held[0], on_cancel_note, &cs);
    rr_call_fail(fx->held[0], RR_STATUS_ABORTED, "done first");
    fx->held[0] = NULL;
    fx_run_for(fx, 0.05);
    assert_int_equal(cs.runs, 0);
}

// ------------------------------------------ freeing from the grace period

static void
on_cancel_free_server(rr_call *call, void *arg)
{
    fixture *fx = arg;

    fx->cancels++;
    rr_server_free(fx->srv); // the first one frees; later ones: no-op
    rr_call_fail(call, RR_STATUS_ABORTED, "freed");
}

static void
h_hold_free(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fixture *fx = arg;

    (void) req;
    fx->n_held++;
    rr_call_on_cancel(call, on_cancel_free_server, fx);
}

// Finding 1, the server's side: the grace period's loop over connections
// read its next connection after running cancel callbacks, which may free
// the server and with it every connection.
static void
test_lifetime_free_server_from_grace_period_cancel(void **state)
{
    fixture *fx = *state;
    rr_channel *ch2;
    outcome o1, o2 = {.runs = 0}, o3 = {.runs = 0};
    Rrtest__Echo req = RRTEST__ECHO__INIT;

    fx->handlers[M_UNSET] = h_hold_free;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    assert_int_equal(rr_channel_new(&ch2, fx->loop, fx->target, NULL), RR_OK);
    req.text = (char *) "x";
    fx_call(fx, M_UNSET, "x", NULL, &o1);
    assert_int_equal(rr_channel_call(ch2, &test_methods[M_UNSET], &req.base,
                                     NULL, result_cb, &o2, NULL),
                     RR_OK);
    assert_int_equal(rr_channel_call(ch2, &test_methods[M_UNSET], &req.base,
                                     NULL, result_cb, &o3, NULL),
                     RR_OK);
    while (fx->n_held < 3 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    fx->n_held = 0; // nothing for the teardown to complete
    assert_int_equal(rr_server_shutdown(fx->srv, 0.01, NULL, NULL), RR_OK);
    while (fx->cancels < 3 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    fx->srv = NULL;
    fx_wait(fx, &o1);
    fx_wait(fx, &o2);
    fx_wait(fx, &o3);
    rr_channel_free(ch2);
}

// A worker completed the call, and before the loop took the completion
// the connection closed: the cancel callback, which would complete the
// call a second time, must not run.  Before, it ran, and the mailbox then
// completed a call already in the pool.
static void
test_lifetime_thread_completion_wins_over_cancel(void **state)
{
    fixture *fx = *state;
    cancel_seen cs = {.returned = true, .complete = true};

    fx->handlers[M_UNSET] = h_keep;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    outcome o;
    fx_call(fx, M_UNSET, "x", NULL, &o);
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    rr_call_on_cancel(fx->held[0], on_cancel_note, &cs);
    late l = {fx->held[0], &fx->held_req[0]->base, true};
    complete_from_thread(&l);
    fx->held[0] = NULL;
    rr_channel_free(fx->ch); // closes the connection ...
    fx->ch = NULL;
    rr_server_free(fx->srv); // ... which cancels what is in flight
    fx->srv = NULL;
    assert_int_equal(cs.runs, 0);
    ev_run(fx->loop, 0);
}

// ------------------------------------------------- an outside review's

// A connection closing (its client went away) cancels its calls, and a
// cancel callback frees the server.  rr_server_free's loop over the
// connections found the closing one again, forever: it left the list
// only after its calls' callbacks ran.
static void
test_lifetime_free_server_from_connection_close_cancel(void **state)
{
    fixture *fx = *state;
    outcome o;

    fx->handlers[M_UNSET] = h_hold_free;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    fx_call(fx, M_UNSET, "x", NULL, &o);
    fx_call(fx, M_UNSET, "y", NULL, &o);
    while (fx->n_held < 2 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    fx->n_held = 0;          // nothing for the teardown to complete
    rr_channel_free(fx->ch); // its callbacks run now, with o alive
    fx->ch = NULL;
    while (fx->cancels < 2 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_false(fx->guard_fired);
    assert_int_equal(fx->cancels, 2);
    fx->srv = NULL;
    ev_run(fx->loop, 0);
}

// The loop writes every connection's output from one watcher just
// before it polls (transport/scratch.h).  There one peer's write meets its
// reset, the close cancels its held call, and that cancel callback frees
// the server, with the other peers' replies still waiting on the same
// list and the server the last owner of the loop's shared buffer.
static void
test_lifetime_free_server_from_the_loops_flush(void **state)
{
    fixture *fx = *state;
    rawpeer a, others[3];

    fx->handlers[M_UNSET] = h_hold_free;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    rr_channel_free(fx->ch); // the server alone holds the buffer
    fx->ch = NULL;
    rawpeer_connect(&a, fx);
    rawpeer_handshake(&a);
    rawpeer_request(&a, 1, test_methods[M_UNSET].full_name, "held", 0);
    while (fx->n_held < 1 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    fx->n_held = 0; // nothing for the teardown to complete
    for (int i = 0; i < 3; i++) {
        rawpeer_connect(&others[i], fx);
        rawpeer_handshake(&others[i]);
        rawpeer_request(&others[i], 1, test_methods[M_ECHO].full_name, "e", 0);
    }
    // a's Echo is read with the others' in one wake-up; its reply's write
    // finds the reset.
    rawpeer_request(&a, 3, test_methods[M_ECHO].full_name, "e", 0);
    rawpeer_reset(&a);
    while (fx->cancels < 1 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_false(fx->guard_fired);
    assert_int_equal(fx->cancels, 1);
    fx->srv = NULL;
    for (int i = 0; i < 3; i++) {
        rawpeer_wait_eof(&others[i]); // served or not, closed: no leak
        rawpeer_close(&others[i]);
    }
}

// Calls held on two loops of one server: the handlers run on either
// loop's thread and tell the test's loop through an ev_async.
typedef struct multi {
    pthread_mutex_t mu;
    rr_call *held[4];
    struct ev_loop *loop_of[4];
    size_t n;
    struct ev_loop *main_loop;
    ev_async seen;
} multi;

static void
multi_seen_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) loop;
    (void) w;
    (void) revents;
}

static void
h_multi_hold(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    multi *m = ((fixture *) arg)->user;

    (void) req;
    pthread_mutex_lock(&m->mu);
    m->loop_of[m->n] = rr_call_loop(call);
    m->held[m->n++] = call;
    pthread_mutex_unlock(&m->mu);
    ev_async_send(m->main_loop, &m->seen);
}

static size_t
multi_count(multi *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    pthread_mutex_unlock(&m->mu);
    return n;
}

// With loops = 2, the extra loop is destroyed by rr_server_free, and
// completing a call it held used the destroyed loop: from the test's
// thread (rr_call_fail: ev_async_stop on the freed loop) and from a
// worker (ev_async_send on it).  rr_call_loop also kept returning it.
// After the free a call belongs to no loop: each completion just frees
// it, on whichever thread.
static void
test_lifetime_multiloop_complete_after_free(void **state)
{
    fixture *fx = *state;
    multi m = {.n = 0};
    rr_server_opts so;
    rr_channel *ch2;
    outcome o[4] = {{.runs = 0}};

    pthread_mutex_init(&m.mu, NULL);
    m.main_loop = fx->loop;
    ev_async_init(&m.seen, multi_seen_cb);
    ev_async_start(fx->loop, &m.seen);
    fx->user = &m;
    fx->handlers[M_UNSET] = h_multi_hold;
    rr_server_opts_init(&so);
    so.loops = 2;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    // The first connection goes to loop 0, the second to loop 1.
    fx_call(fx, M_UNSET, "a", NULL, &o[0]);
    fx_call(fx, M_UNSET, "b", NULL, &o[1]);
    while (multi_count(&m) < 2 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(rr_channel_new(&ch2, fx->loop, fx->target, NULL), RR_OK);
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    req.text = (char *) "c";
    for (int i = 2; i < 4; i++)
        assert_int_equal(rr_channel_call(ch2, &test_methods[M_UNSET], &req.base,
                                         NULL, result_cb, &o[i], NULL),
                         RR_OK);
    while (multi_count(&m) < 4 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(multi_count(&m), 4);
    assert_ptr_equal(m.loop_of[0], fx->loop);
    assert_ptr_not_equal(m.loop_of[2], fx->loop);
    rr_channel_free(fx->ch);
    rr_channel_free(ch2);
    fx->ch = NULL;
    rr_server_free(fx->srv);
    fx->srv = NULL;
    for (int i = 0; i < 4; i++) {
        assert_null(rr_call_loop(m.held[i]));
        assert_true(rr_call_cancelled(m.held[i]));
    }
    // One of each loop's from this thread, the other from a worker.
    rr_call_fail(m.held[0], RR_STATUS_ABORTED, "late");
    rr_call_fail(m.held[2], RR_STATUS_ABORTED, "late");
    late a = {m.held[1], NULL, false};
    late b = {m.held[3], NULL, false};
    complete_from_thread(&a);
    complete_from_thread(&b);
    ev_async_stop(fx->loop, &m.seen);
    pthread_mutex_destroy(&m.mu);
    fx->user = NULL;
    ev_run(fx->loop, 0);
}

// One loop: rr_call_loop is NULL once the server is freed (it kept
// returning the loop), and the deadline still reads.
static void
test_lifetime_call_loop_after_free(void **state)
{
    fixture *fx = *state;
    rr_call_opts co = {.timeout = 30};
    outcome o;

    fx->handlers[M_UNSET] = h_keep;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    fx_call(fx, M_UNSET, "x", &co, &o);
    while (fx->n_held == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    rr_call *call = fx->held[0];
    assert_ptr_equal(rr_call_loop(call), fx->loop);
    fx->held[0] = NULL;
    rr_channel_free(fx->ch);
    fx->ch = NULL;
    rr_server_free(fx->srv);
    fx->srv = NULL;
    assert_null(rr_call_loop(call));
    double left = rr_call_remaining(call);
    assert_true(left > 0 && left <= 30);
    rr_call_fail(call, RR_STATUS_ABORTED, "late");
    ev_run(fx->loop, 0);
}

static void
loop_init_frees(rr_server *srv, struct ev_loop *loop, unsigned index, void *arg)
{
    int *runs = arg;

    (void) loop;
    (void) index;
    (*runs)++;
    rr_server_free(srv);
}

// A loop_init hook that frees its server: rr_server_listen, which ran it
// without holding the server, then read the freed server.  It returns
// RR_ECLOSED now, and nothing leaks.
static void
test_lifetime_loop_init_frees_server(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    rr_server *srv;
    int runs = 0;

    rr_server_opts_init(&so);
    so.loop_init = loop_init_frees;
    so.loop_arg = &runs;
    assert_int_equal(rr_server_new(&srv, fx->loop, &so), RR_OK);
    assert_int_equal(
        rr_server_add_service(srv, &rrtest__test__descriptor, fx->handlers, fx),
        RR_OK);
    assert_int_equal(rr_server_listen(srv, "127.0.0.1:0"), RR_ECLOSED);
    assert_int_equal(runs, 1);
    assert_non_null(strstr(rr_last_error(), "loop_init"));
    ev_run(fx->loop, EVRUN_NOWAIT);
}

typedef struct shut_free {
    fixture *fx;
    int runs;
} shut_free;

static void
shutdown_frees(rr_server *srv, void *arg)
{
    shut_free *sf = arg;

    sf->runs++;
    rr_server_free(srv);
    sf->fx->srv = NULL;
}

// The shutdown callback frees the server: with one loop (from the last
// connection's close) and with three (from the extra loops' hand-back,
// whose own watcher goes with the server).
static void
test_lifetime_free_server_from_shutdown_callback(void **state)
{
    fixture *fx = *state;

    for (unsigned loops = 1; loops <= 3; loops += 2) {
        rr_server_opts so;
        rr_channel *ch2;
        outcome o[2] = {{.runs = 0}, {.runs = 0}};
        shut_free sf = {fx, 0};

        rr_server_opts_init(&so);
        so.loops = loops;
        assert_int_equal(fx_restart(fx, &so, NULL), 0);
        assert_int_equal(rr_channel_new(&ch2, fx->loop, fx->target, NULL),
                         RR_OK);
        Rrtest__Echo req = RRTEST__ECHO__INIT;
        req.text = (char *) "b";
        fx_call(fx, M_ECHO, "a", NULL, &o[0]);
        assert_int_equal(rr_channel_call(ch2, &test_methods[M_ECHO], &req.base,
                                         NULL, result_cb, &o[1], NULL),
                         RR_OK);
        fx_wait(fx, &o[0]);
        fx_wait(fx, &o[1]);
        assert_int_equal(rr_server_shutdown(fx->srv, 5.0, shutdown_frees, &sf),
                         RR_OK);
        assert_int_equal(sf.runs, 0); // never before it returns
        while (sf.runs == 0 && !fx->guard_fired)
            ev_run(fx->loop, EVRUN_ONCE);
        if (sf.runs != 1)
            fail_msg("loops %u: the callback ran %d times", loops, sf.runs);
        assert_null(fx->srv);
        rr_channel_free(ch2);
    }
}

// rr_server_free inside a handler, as an outside review tried it: the
// calls let go of the server inside the free, not when the handler
// returns.  Before, until then rr_call_loop still gave the loop, a cancel
// callback waiting for the next iteration ran only after the free, one
// registered after the free ran too, and a worker completing a call in
// that window took the loop's path from its own thread (a race that
// could leak the core).
typedef struct in_handler {
    fixture *fx;
    int waiting_runs; // the cancel callback that waited for the loop
    bool waiting_ran_inside;
    int late_runs;   // registered after the free: must never run
    bool loops_null; // rr_call_loop of every held call, inside
    bool worker_saw_null;
    bool freed;
} in_handler;

static void
on_cancel_waiting(rr_call *call, void *arg)
{
    in_handler *ih = arg;

    (void) call;
    ih->waiting_runs++;
}

static void
on_cancel_late(rr_call *call, void *arg)
{
    in_handler *ih = arg;

    (void) call;
    ih->late_runs++;
}

typedef struct worker_job {
    rr_call *call;
    bool saw_null;
} worker_job;

static void *
worker_run(void *arg)
{
    worker_job *j = arg;

    j->saw_null = rr_call_loop(j->call) == NULL;
    rr_call_fail_from_thread(j->call, RR_STATUS_ABORTED, "from a worker");
    return NULL;
}

static void
h_free_in_handler(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fixture *fx = arg;
    in_handler *ih = fx->user;
    pthread_t t;

    (void) req;
    // held[0] was cancelled by its client: this waits for the loop.
    rr_call_on_cancel(fx->held[0], on_cancel_waiting, ih);
    rr_server_free(fx->srv);
    ih->freed = true;
    ih->waiting_ran_inside = ih->waiting_runs == 1;
    ih->loops_null = rr_call_loop(call) == NULL &&
                     rr_call_loop(fx->held[0]) == NULL &&
                     rr_call_loop(fx->held[1]) == NULL;
    rr_call_on_cancel(fx->held[1], on_cancel_late, ih);
    worker_job j = {fx->held[1], false};
    assert_int_equal(pthread_create(&t, NULL, worker_run, &j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    ih->worker_saw_null = j.saw_null;
    rr_call_fail(fx->held[0], RR_STATUS_ABORTED, "late");
    fx->held[0] = fx->held[1] = NULL;
    rr_call_fail(call, RR_STATUS_ABORTED, "freed its server");
}

static void
test_lifetime_free_server_inside_handler(void **state)
{
    fixture *fx = *state;
    in_handler ih = {.fx = fx};
    outcome o[3];

    fx->user = &ih;
    fx->handlers[M_UNSET] = h_keep;
    fx->handlers[M_META] = h_free_in_handler;
    assert_int_equal(fx_restart(fx, NULL, NULL), 0);
    hold_cancelled(fx, &o[0]);
    fx_call(fx, M_UNSET, "b", NULL, &o[1]);
    while (fx->n_held < 2 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    fx_call(fx, M_META, "free", NULL, &o[2]);
    while (!ih.freed && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    fx->srv = NULL;
    fx->n_held = 0;
    ev_run(fx->loop, EVRUN_NOWAIT);
    assert_true(ih.waiting_ran_inside);
    assert_int_equal(ih.waiting_runs, 1);
    assert_true(ih.loops_null);
    assert_true(ih.worker_saw_null);
    assert_int_equal(ih.late_runs, 0);
    for (int i = 0; i < 3; i++)
        fx_wait(fx, &o[i]); // the connection went with the server
    fx->user = NULL;
}

int
main(void)
{
#define T(name)                                                                \
    cmocka_unit_test_setup_teardown(name, fx_group_setup, fx_group_teardown)
    const struct CMUnitTest tests[] = {
        T(test_lifetime_connection_fails_inside_its_flush),
        T(test_lifetime_call_completed_twice),
        T(test_lifetime_complete_after_server_free),
        T(test_lifetime_posted_calls_at_free),
        T(test_lifetime_on_cancel_after_the_cancel),
        T(test_lifetime_completed_before_its_cancel_callback),
        T(test_lifetime_free_server_from_grace_period_cancel),
        T(test_lifetime_thread_completion_wins_over_cancel),
        T(test_lifetime_free_server_from_connection_close_cancel),
        T(test_lifetime_free_server_from_the_loops_flush),
        T(test_lifetime_multiloop_complete_after_free),
        T(test_lifetime_call_loop_after_free),
        T(test_lifetime_loop_init_frees_server),
        T(test_lifetime_free_server_from_shutdown_callback),
        T(test_lifetime_free_server_inside_handler),
    };
#undef T
    return cmocka_run_group_tests_name("lifetime", tests, NULL, NULL);
}
