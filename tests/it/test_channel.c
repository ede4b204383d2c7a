// SPDX-License-Identifier: MIT
//
// test_channel.c -- the channel's promises, each through the public API:
// a callback never runs before the call that started it returns; the
// channel may be freed from inside any of its callbacks; calls beyond
// what the output can take wait in the queue; pooled calls keep no big
// buffers; a retired connection closes; a call ID is never reused, even
// after an allocation failure; cancel by token; the blocking wrapper's
// statuses and messages; reserved metadata keys; the server's metadata
// limit.
//
// The program is linked with -Wl,--wrap for malloc, calloc, realloc and
// free: a test can make one allocation of rawrpc's fail, and the live
// blocks of 64 KiB and more that rawrpc's own code holds are counted.
// (libprotobuf-c and libev allocate in their shared libraries, unwrapped;
// the counter therefore sees only what rawrpc allocates itself.)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/channel.h"
#include "harness.h"
#include "codec/meta.h"

// ------------------------------------------------------------ the heap

// The linker's --wrap option dictates these reserved names.
// NOLINTBEGIN(bugprone-reserved-identifier)
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static int fail_calloc_in; // > 0: the fail_calloc_in-th calloc from now fails

#define BIG     ((size_t) 64 * 1024)
#define MAX_BIG 4096
static struct {
    void *p;
    size_t n;
} big[MAX_BIG];
static size_t big_top;   // entries in use are below this
static size_t big_bytes; // live bytes in blocks of BIG bytes or more

static void
big_add(void *p, size_t n)
{
    if (p == NULL || n < BIG)
        return;
    for (size_t i = 0; i < MAX_BIG; i++) {
        if (big[i].p == NULL) {
            big[i].p = p;
            big[i].n = n;
            big_bytes += n;
            if (i >= big_top)
                big_top = i + 1;
            return;
        }
    }
    abort(); // more big blocks than the table holds
}

static void
big_del(void *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < big_top; i++) {
        if (big[i].p == p) {
            big_bytes -= big[i].n;
            big[i].p = NULL;
            while (big_top > 0 && big[big_top - 1].p == NULL)
                big_top--;
            return;
        }
    }
}

void *
__wrap_malloc(size_t n)
{
    void *p = __real_malloc(n);

    big_add(p, n);
    return p;
}

void *
__wrap_calloc(size_t n, size_t m)
{
    if (fail_calloc_in > 0 && --fail_calloc_in == 0)
        return NULL;
    void *p = __real_calloc(n, m);
    big_add(p, n * m);
    return p;
}

void *
__wrap_realloc(void *p, size_t n)
{
    void *r = __real_realloc(p, n);

    if (r != NULL || n == 0) {
        big_del(p);
        big_add(r, n);
    }
    return r;
}

void
__wrap_free(void *p)
{
    big_del(p);
    __real_free(p);
}
// NOLINTEND(bugprone-reserved-identifier)

// ------------------------------------------------------------- helpers

#define RUN_UNTIL(fx, cond)                                                    \
    do {                                                                       \
        while (!(cond) && !(fx)->guard_fired)                                  \
            ev_run((fx)->loop, EVRUN_ONCE);                                    \
        if ((fx)->guard_fired)                                                 \
            fail_msg("guard timer fired waiting for %s", #cond);               \
    } while (0)

// One call's outcome, and whether its callback ran before the call that
// started it had returned.
typedef struct probe {
    bool returned; // set right after rr_channel_call returned
    bool early;    // the callback found returned still false
    int runs;
    rr_status status;
    char message[160];
    char text[64];
    size_t data_len;
} probe;

static void
probe_cb(const rr_result *res, void *arg)
{
    probe *p = arg;

    p->runs++;
    p->early |= !p->returned;
    p->status = res->status;
    snprintf(p->message, sizeof(p->message), "%s", res->message);
    if (res->reply != NULL) {
        const Rrtest__Echo *e = (const Rrtest__Echo *) res->reply;
        snprintf(p->text, sizeof(p->text), "%s", e->text);
        p->data_len = e->data.len;
    }
}

static uint8_t zeros[(size_t) 1 << 20];

static int
call_with(rr_channel *ch, int m, const char *text, size_t data_len,
          const rr_call_opts *o, rr_result_cb cb, probe *p, void *arg,
          uint64_t *token)
{
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    char buf[64];

    snprintf(buf, sizeof(buf), "%s", text);
    req.text = buf;
    req.data.data = zeros;
    req.data.len = data_len;
    memset(p, 0, sizeof(*p));
    int rv =
        rr_channel_call(ch, &test_methods[m], &req.base, o, cb, arg, token);
    p->returned = true;
    return rv;
}

static int
call_probe(rr_channel *ch, int m, const char *text, size_t data_len,
           const rr_call_opts *o, probe *p, uint64_t *token)
{
    return call_with(ch, m, text, data_len, o, probe_cb, p, p, token);
}

static void
wait_probe(fixture *fx, probe *p)
{
    RUN_UNTIL(fx, p->runs > 0);
    assert_int_equal(p->runs, 1);
}

// A 127.0.0.1 port the kernel gave us and we closed: nobody listens.
static void
refused_target(char *target, size_t len)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sin, &sl), 0);
    close(fd);
    snprintf(target, len, "127.0.0.1:%u", (unsigned) ntohs(sin.sin_port));
}

// A callback that frees its channel, and completes a server call (the
// parent of the call it ends) when there is one.
typedef struct freer {
    rr_channel **ch;
    rr_call **parent;
    probe p;
} freer;

static void
free_cb(const rr_result *res, void *arg)
{
    freer *f = arg;

    probe_cb(res, &f->p);
    rr_channel_free(*f->ch);
    *f->ch = NULL;
    if (f->parent != NULL && *f->parent != NULL) {
        rr_call_fail(*f->parent, RR_STATUS_ABORTED, "child ended");
        *f->parent = NULL;
    }
}

static int
call_freer(rr_channel *ch, int m, const rr_call_opts *o, freer *f,
           uint64_t *token)
{
    return call_with(ch, m, "freer", 0, o, free_cb, &f->p, f, token);
}

// ------------------------------------------- callbacks after the return

static void
test_channel_callback_never_before_return(void **state)
{
    fixture *fx = *state;
    char path[64], target[96];
    rr_channel *ch;
    probe p, h;
    const char *early[5];
    int n_early = 0;
#define EARLY(what)                                                            \
    do {                                                                       \
        if (p.early)                                                           \
            early[n_early++] = (what);                                         \
    } while (0)

    // A Unix path nobody listens on: connect(2) fails inside the call.
    snprintf(path, sizeof(path), "/tmp/rawrpc-nobody-%d.sock", (int) getpid());
    unlink(path);
    snprintf(target, sizeof(target), "unix:%s", path);
    assert_int_equal(rr_channel_new(&ch, fx->loop, target, NULL), RR_OK);
    assert_int_equal(call_probe(ch, M_ECHO, "x", 0, NULL, &p, NULL), RR_OK);
    wait_probe(fx, &p);
    EARLY("connect refused on a Unix path");
    assert_int_equal(p.status, RR_STATUS_UNAVAILABLE);
    // Now backing off: a call that does not wait for ready fails at once,
    // yet from the loop.
    assert_int_equal(call_probe(ch, M_ECHO, "x", 0, NULL, &p, NULL), RR_OK);
    wait_probe(fx, &p);
    EARLY("backing off, not waiting for ready");
    assert_int_equal(p.status, RR_STATUS_UNAVAILABLE);
    rr_channel_free(ch);

    // A request larger than a READY channel's server accepts.
    rr_server_opts so;
    rr_server_opts_init(&so);
    so.max_frame_size = 2048;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    assert_int_equal(call_probe(fx->ch, M_ECHO, "warm", 0, NULL, &p, NULL),
                     RR_OK);
    wait_probe(fx, &p);
    assert_true(rr_channel_connected(fx->ch));
    assert_int_equal(call_probe(fx->ch, M_ECHO, "big", 4000, NULL, &p, NULL),
                     RR_OK);
    wait_probe(fx, &p);
    EARLY("request too large for a READY channel");
    assert_int_equal(p.status, RR_STATUS_RESOURCE_EXHAUSTED);

    // A deadline already passed: 1e-12 s is lost in the rounding of the
    // loop's clock (about 1.7e9 s), so the deadline is now.
    rr_call_opts late = {.timeout = 1e-12};
    assert_int_equal(call_probe(fx->ch, M_ECHO, "late", 0, &late, &p, NULL),
                     RR_OK);
    wait_probe(fx, &p);
    EARLY("deadline already passed");
    assert_int_equal(p.status, RR_STATUS_DEADLINE_EXCEEDED);

    // A parent already cancelled.
    uint64_t token;
    size_t k = fx->n_held;
    assert_int_equal(call_probe(fx->ch, M_HOLD, "parent", 0, NULL, &h, &token),
                     RR_OK);
    RUN_UNTIL(fx, fx->n_held > k);
    int cancels = fx->cancels;
    assert_int_equal(rr_channel_cancel(fx->ch, token), RR_OK);
    RUN_UNTIL(fx, fx->cancels > cancels);
    assert_true(rr_call_cancelled(fx->held[k]));
    rr_call_opts child = {.parent = fx->held[k]};
    assert_int_equal(call_probe(fx->ch, M_ECHO, "child", 0, &child, &p, NULL),
                     RR_OK);
    wait_probe(fx, &p);
    EARLY("parent already cancelled");
    assert_int_equal(p.status, RR_STATUS_CANCELLED);
    rr_call_fail(fx->held[k], RR_STATUS_ABORTED, "done");
    fx->held[k] = NULL;
    wait_probe(fx, &h);
#undef EARLY
    for (int i = 0; i < n_early; i++)
        print_message("the callback ran before the call returned: %s\n",
                      early[i]);
    assert_int_equal(n_early, 0);
}

// ------------------------------------------ freeing from the callbacks

// Every call to a port nobody listens on fails when the connect does;
// the first callback frees the channel while the others are still
// being failed.  Nothing may touch the channel after that (the backoff
// timer of a freed channel would fire in the loop run at the end).
static void
test_channel_free_in_queue_failure_callback(void **state)
{
    fixture *fx = *state;
    char target[64];
    rr_channel_opts co;
    rr_channel *ch;
    freer f = {.ch = &ch};
    probe p[2];

    refused_target(target, sizeof(target));
    rr_channel_opts_init(&co);
    co.backoff_initial = 0.01;
    assert_int_equal(rr_channel_new(&ch, fx->loop, target, &co), RR_OK);
    assert_int_equal(call_freer(ch, M_ECHO, NULL, &f, NULL), RR_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(call_probe(ch, M_ECHO, "q", 0, NULL, &p[i], NULL),
                         RR_OK);
    RUN_UNTIL(fx, f.p.runs > 0 && p[0].runs > 0 && p[1].runs > 0);
    assert_null(ch);
    assert_int_equal(f.p.runs, 1);
    assert_int_equal(f.p.status, RR_STATUS_UNAVAILABLE);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(p[i].runs, 1);
        assert_int_equal(p[i].status, RR_STATUS_UNAVAILABLE);
    }
    fx_run_for(fx, 0.1);
}

enum matrix_kind {
    K_OK,           // the reply arrived
    K_DEADLINE,     // the call's deadline passed
    K_CANCEL,       // rr_channel_cancel
    K_CONN_LOST,    // the server went away
    K_QUEUE_FAILED, // the connect was refused
    K_PARENT,       // the parent server call was cancelled
    K_KINDS
};

// For K_PARENT: the handler of Relay calls Hold on a second channel with
// the incoming call as parent.
typedef struct parent_case {
    rr_channel *b;
    rr_call *parent;
    freer f;
} parent_case;

static void
h_child(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fixture *fx = arg;
    parent_case *pc = fx->user;
    rr_call_opts co = {.parent = call};

    pc->parent = call;
    pc->f.ch = &pc->b;
    pc->f.parent = &pc->parent;
    memset(&pc->f.p, 0, sizeof(pc->f.p));
    assert_int_equal(rr_channel_call(pc->b, &test_methods[M_HOLD], req, &co,
                                     free_cb, &pc->f, NULL),
                     RR_OK);
    pc->f.p.returned = true;
}

static void
matrix_case(fixture *fx, enum matrix_kind kind)
{
    freer f = {.ch = &fx->ch};
    probe p[2] = {{0}};
    uint64_t token;
    size_t held = fx->n_held;

    switch (kind) {
    case K_OK:
        assert_int_equal(call_probe(fx->ch, M_HOLD, "h", 0, NULL, &p[0], NULL),
                         RR_OK);
        RUN_UNTIL(fx, fx->n_held > held);
        assert_int_equal(call_freer(fx->ch, M_ECHO, NULL, &f, NULL), RR_OK);
        RUN_UNTIL(fx, f.p.runs > 0 && p[0].runs > 0);
        assert_int_equal(f.p.status, RR_STATUS_OK);
        assert_string_equal(p[0].message, "channel freed");
        break;
    case K_DEADLINE: {
        rr_call_opts co = {.timeout = 0.05};
        assert_int_equal(call_probe(fx->ch, M_HOLD, "h", 0, NULL, &p[0], NULL),
                         RR_OK);
        assert_int_equal(call_freer(fx->ch, M_HOLD, &co, &f, NULL), RR_OK);
        RUN_UNTIL(fx, f.p.runs > 0 && p[0].runs > 0);
        assert_int_equal(f.p.status, RR_STATUS_DEADLINE_EXCEEDED);
        assert_string_equal(p[0].message, "channel freed");
        break;
    }
    case K_CANCEL:
        assert_int_equal(call_probe(fx->ch, M_HOLD, "h", 0, NULL, &p[0], NULL),
                         RR_OK);
        assert_int_equal(call_freer(fx->ch, M_HOLD, NULL, &f, &token), RR_OK);
        RUN_UNTIL(fx, fx->n_held >= held + 2);
        assert_int_equal(rr_channel_cancel(fx->ch, token), RR_OK);
        RUN_UNTIL(fx, f.p.runs > 0 && p[0].runs > 0);
        assert_int_equal(f.p.status, RR_STATUS_CANCELLED);
        assert_string_equal(p[0].message, "channel freed");
        break;
    case K_CONN_LOST:
        // The freeing call first: the connection's calls fail in ID order.
        assert_int_equal(call_freer(fx->ch, M_HOLD, NULL, &f, NULL), RR_OK);
        for (int i = 0; i < 2; i++)
            assert_int_equal(
                call_probe(fx->ch, M_HOLD, "h", 0, NULL, &p[i], NULL), RR_OK);
        RUN_UNTIL(fx, fx->n_held >= held + 3);
        rr_server_free(fx->srv);
        fx->srv = NULL;
        RUN_UNTIL(fx, f.p.runs > 0 && p[0].runs > 0 && p[1].runs > 0);
        assert_int_equal(f.p.status, RR_STATUS_UNAVAILABLE);
        assert_int_equal(p[1].runs, 1);
        assert_int_equal(p[1].status, RR_STATUS_UNAVAILABLE);
        break;
    case K_QUEUE_FAILED: {
        char target[64];
        rr_channel_opts co;
        rr_channel_opts_init(&co);
        co.backoff_initial = 0.01;
        refused_target(target, sizeof(target));
        rr_channel_free(fx->ch);
        assert_int_equal(rr_channel_new(&fx->ch, fx->loop, target, &co), RR_OK);
        assert_int_equal(call_freer(fx->ch, M_ECHO, NULL, &f, NULL), RR_OK);
        assert_int_equal(call_probe(fx->ch, M_ECHO, "q", 0, NULL, &p[0], NULL),
                         RR_OK);
        RUN_UNTIL(fx, f.p.runs > 0 && p[0].runs > 0);
        assert_int_equal(f.p.status, RR_STATUS_UNAVAILABLE);
        break;
    }
    case K_PARENT: {
        parent_case *pc = fx->user;
        probe outer;
        memset(pc, 0, sizeof(*pc));
        assert_int_equal(rr_channel_new(&pc->b, fx->loop, fx->target, NULL),
                         RR_OK);
        // A call the freeing child's channel still has pending.
        assert_int_equal(call_probe(pc->b, M_HOLD, "h", 0, NULL, &p[0], NULL),
                         RR_OK);
        assert_int_equal(
            call_probe(fx->ch, M_RELAY, "relay", 0, NULL, &outer, &token),
            RR_OK);
        RUN_UNTIL(fx, fx->n_held >= held + 2);
        assert_int_equal(rr_channel_cancel(fx->ch, token), RR_OK);
        RUN_UNTIL(fx, pc->f.p.runs > 0 && p[0].runs > 0 && outer.runs > 0);
        assert_null(pc->b);
        assert_null(pc->parent);
        assert_int_equal(pc->f.p.runs, 1);
        assert_false(pc->f.p.early);
        assert_int_equal(pc->f.p.status, RR_STATUS_CANCELLED);
        assert_string_equal(pc->f.p.message, "parent call cancelled");
        assert_string_equal(p[0].message, "channel freed");
        assert_int_equal(outer.status, RR_STATUS_CANCELLED);
        f.p.runs = 1; // fx->ch was not the one freed
        break;
    }
    case K_KINDS:
        fail_msg("not a kind");
    }
    if (kind != K_PARENT) {
        assert_null(fx->ch);
        assert_false(f.p.early);
    }
    assert_int_equal(f.p.runs, 1);
    assert_int_equal(p[0].runs, 1);
    assert_false(p[0].early);
    assert_int_equal(p[0].status, RR_STATUS_UNAVAILABLE);
    fx_run_for(fx, 0.05); // no timer of a freed channel may fire
}

static void
test_channel_free_from_every_callback(void **state)
{
    fixture *fx = *state;
    static parent_case pc; // fx->user outlives this frame

    fx->user = &pc;
    fx->handlers[M_RELAY] = h_child;
    for (int k = 0; k < K_KINDS; k++) {
        assert_int_equal(fx_restart(fx, NULL, NULL), 0);
        matrix_case(fx, (enum matrix_kind) k);
    }
    fx->user = NULL;
}

// --------------------------------------------------------- backpressure

// Calls beyond what the output holds wait in the channel's queue and go
// as it drains, however much is asked at once.
static void
test_channel_big_calls_wait_for_output(void **state)
{
    fixture *fx = *state;
    enum { N = 96 };
    probe *p = calloc(N, sizeof(*p));
    int ok = 0;

    assert_non_null(p);
    assert_int_equal(call_probe(fx->ch, M_ECHO, "warm", 0, NULL, &p[0], NULL),
                     RR_OK);
    wait_probe(fx, &p[0]);
    for (int i = 0; i < N; i++)
        assert_int_equal(
            call_probe(fx->ch, M_ECHO, "big", sizeof(zeros), NULL, &p[i], NULL),
            RR_OK);
    for (int i = 0; i < N; i++) {
        wait_probe(fx, &p[i]);
        ok += p[i].status == RR_STATUS_OK && p[i].data_len == sizeof(zeros);
    }
    if (ok != N)
        print_message("%d of %d failed, the first with: %s\n", N - ok, N,
                      p[0].status == RR_STATUS_OK ? p[N - 1].message
                                                  : p[0].message);
    assert_int_equal(ok, N);
    free(p);
}

// A finished call is pooled for the next one, but not with a big
// payload buffer: after big calls and a thousand small ones the heap
// holds no more than before.
static void
test_channel_pool_keeps_no_big_buffers(void **state)
{
    fixture *fx = *state;
    enum { N_BIG = 32, BATCH = 10, N_SMALL = 1000 };
    probe p[N_BIG];

    for (int i = 0; i < BATCH; i++)
        assert_int_equal(call_probe(fx->ch, M_ECHO, "s", 0, NULL, &p[i], NULL),
                         RR_OK);
    for (int i = 0; i < BATCH; i++)
        wait_probe(fx, &p[i]);
    size_t before = big_bytes;
    for (int i = 0; i < N_BIG; i++)
        assert_int_equal(
            call_probe(fx->ch, M_ECHO, "big", sizeof(zeros), NULL, &p[i], NULL),
            RR_OK);
    for (int i = 0; i < N_BIG; i++) {
        wait_probe(fx, &p[i]);
        assert_int_equal(p[i].status, RR_STATUS_OK);
    }
    for (int n = 0; n < N_SMALL; n += BATCH) {
        for (int i = 0; i < BATCH; i++)
            assert_int_equal(
                call_probe(fx->ch, M_ECHO, "s", 0, NULL, &p[i], NULL), RR_OK);
        for (int i = 0; i < BATCH; i++)
            wait_probe(fx, &p[i]);
    }
    print_message("big blocks: %zu KiB before, %zu KiB after\n", before >> 10,
                  big_bytes >> 10);
    // Connection buffers of up to 2 MiB stay while traffic flows (conn.c,
    // KEEP_BUF): input and output, on both ends; the pool keeps payload
    // buffers within its 8 MiB budget.  Before, 32 of 1 MiB kept were
    // 39 MiB in all.
    assert_true(big_bytes <=
                before + 4 * ((size_t) 2 << 20) + ((size_t) 8 << 20));
}

// ----------------------------------------------------------- call IDs

// A connection whose IDs ran out takes no new calls; once its last call
// is done it says GOAWAY and closes, both ends.
static void
test_channel_retired_connection_closes(void **state)
{
    fixture *fx = *state;
    probe p;

    assert_int_equal(call_probe(fx->ch, M_ECHO, "first", 0, NULL, &p, NULL),
                     RR_OK);
    wait_probe(fx, &p);
    int fds = fd_count(); // with one connection: both its ends
    assert_int_equal(rr__channel_set_next_id(fx->ch, 0xFFFFFFFFu), RR_OK);
    assert_int_equal(call_probe(fx->ch, M_ECHO, "last", 0, NULL, &p, NULL),
                     RR_OK);
    wait_probe(fx, &p);
    assert_int_equal(p.status, RR_STATUS_OK);
    RUN_UNTIL(fx, fd_count() == fds - 2);
    // The next call opens a new connection.
    assert_int_equal(call_probe(fx->ch, M_ECHO, "next", 0, NULL, &p, NULL),
                     RR_OK);
    wait_probe(fx, &p);
    assert_int_equal(p.status, RR_STATUS_OK);
    assert_int_equal(fd_count(), fds);
}

// The ninth call in flight grows the connection's call-ID map; when that
// allocation fails the call fails, and its ID must not go to the next
// call (the server would see it twice and close the connection).
static void
test_channel_id_not_reused_after_alloc_failure(void **state)
{
    fixture *fx = *state;
    enum { HELD = 8 };
    probe w, h[HELD], x, y;
    size_t k = fx->n_held;

    assert_int_equal(call_probe(fx->ch, M_ECHO, "warm", 0, NULL, &w, NULL),
                     RR_OK);
    wait_probe(fx, &w);
    for (int i = 0; i < HELD; i++)
        assert_int_equal(call_probe(fx->ch, M_HOLD, "h", 0, NULL, &h[i], NULL),
                         RR_OK);
    RUN_UNTIL(fx, fx->n_held == k + HELD);
    // The first calloc makes the call (the pool is empty), the second
    // grows the map.
    fail_calloc_in = 2;
    assert_int_equal(call_probe(fx->ch, M_HOLD, "x", 0, NULL, &x, NULL), RR_OK);
    assert_int_equal(fail_calloc_in, 0);
    wait_probe(fx, &x);
    assert_int_equal(x.status, RR_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(call_probe(fx->ch, M_ECHO, "after", 0, NULL, &y, NULL),
                     RR_OK);
    wait_probe(fx, &y);
    assert_int_equal(y.status, RR_STATUS_OK);
    for (int i = 0; i < HELD; i++) {
        rr_call_reply(fx->held[k + i], &fx->held_req[k + i]->base);
        fx->held[k + i] = NULL;
        wait_probe(fx, &h[i]);
        assert_int_equal(h[i].status, RR_STATUS_OK);
    }
    assert_false(x.early);
}

// ------------------------------------------------------ cancel, _sync

static void
test_channel_cancel_by_token(void **state)
{
    fixture *fx = *state;
    enum { N = 3000 };
    rr_server_opts so;
    probe *p = calloc(N, sizeof(*p));
    uint64_t *tok = calloc(N, sizeof(*tok));

    assert_non_null(p);
    assert_non_null(tok);
    // Four in flight, the rest queued in the channel.
    rr_server_opts_init(&so);
    so.max_concurrent_calls = 4;
    assert_int_equal(fx_restart(fx, &so, NULL), 0);
    assert_int_equal(call_probe(fx->ch, M_ECHO, "warm", 0, NULL, &p[0], NULL),
                     RR_OK);
    wait_probe(fx, &p[0]);
    for (int i = 0; i < N; i++)
        assert_int_equal(
            call_probe(fx->ch, M_HOLD, "h", 0, NULL, &p[i], &tok[i]), RR_OK);
    RUN_UNTIL(fx, fx->n_held >= 4);
    for (int j = 0; j < N; j++) {
        int i = (int) (((long) j * 7919) % N); // a scrambled order
        assert_int_equal(rr_channel_cancel(fx->ch, tok[i]), RR_OK);
        assert_int_equal(rr_channel_cancel(fx->ch, tok[i]), RR_EINVAL);
        assert_int_equal(p[i].runs, 0); // from the loop
    }
    assert_int_equal(rr_channel_cancel(fx->ch, 0), RR_EINVAL);
    assert_int_equal(rr_channel_cancel(fx->ch, tok[N - 1] + 1000), RR_EINVAL);
    for (int i = 0; i < N; i++) {
        wait_probe(fx, &p[i]);
        assert_int_equal(p[i].status, RR_STATUS_CANCELLED);
    }
    assert_int_equal(rr_channel_cancel(fx->ch, tok[0]), RR_EINVAL);

    // Tokens are found by their low 32 bits: one 2^32 after a live token
    // is skipped, and so is one whose low bits are 0.
    probe a, b, c;
    uint64_t ta, tb, tc;
    assert_int_equal(call_probe(fx->ch, M_HOLD, "a", 0, NULL, &a, &ta), RR_OK);
    rr__channel_set_next_token(fx->ch, ta + ((uint64_t) 1 << 32));
    assert_int_equal(call_probe(fx->ch, M_HOLD, "b", 0, NULL, &b, &tb), RR_OK);
    assert_true(tb == ta + ((uint64_t) 1 << 32) + 1);
    rr__channel_set_next_token(fx->ch, (uint64_t) 1 << 33);
    assert_int_equal(call_probe(fx->ch, M_HOLD, "c", 0, NULL, &c, &tc), RR_OK);
    assert_true(tc == ((uint64_t) 1 << 33) + 1);
    assert_int_equal(rr_channel_cancel(fx->ch, ta + ((uint64_t) 1 << 32)),
                     RR_EINVAL); // never handed out
    assert_int_equal(rr_channel_cancel(fx->ch, (uint64_t) 1 << 33), RR_EINVAL);
    assert_int_equal(rr_channel_cancel(fx->ch, tb), RR_OK);
    wait_probe(fx, &b);
    assert_int_equal(b.status, RR_STATUS_CANCELLED);
    assert_int_equal(a.runs + c.runs, 0);
    assert_int_equal(rr_channel_cancel(fx->ch, ta), RR_OK);
    assert_int_equal(rr_channel_cancel(fx->ch, tc), RR_OK);
    wait_probe(fx, &a);
    wait_probe(fx, &c);
    assert_int_equal(a.status, RR_STATUS_CANCELLED);
    assert_int_equal(c.status, RR_STATUS_CANCELLED);
    free(tok);
    free(p);
}

typedef struct sync_in {
    rr_channel *ch;
    probe p;
} sync_in;

static void
sync_in_cb(const rr_result *res, void *arg)
{
    sync_in *si = arg;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    char *msg = NULL;
    ProtobufCMessage *reply = NULL;

    probe_cb(res, &si->p);
    si->p.status = rr_channel_call_sync(si->ch, &test_methods[M_ECHO],
                                        &req.base, NULL, &reply, &msg);
    assert_null(reply);
    assert_non_null(msg);
    free(msg);
}

// Every return gives a malloc'd message; out of memory is
// RESOURCE_EXHAUSTED, bad arguments INVALID_ARGUMENT.
static void
test_channel_sync_statuses_and_messages(void **state)
{
    fixture *fx = *state;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    ProtobufCMessage *reply = NULL;
    char *msg = NULL;
    rr_status st;

    // The channel has made no call yet: the call's own calloc fails.
    fail_calloc_in = 1;
    st = rr_channel_call_sync(fx->ch, &test_methods[M_ECHO], &req.base, NULL,
                              &reply, &msg);
    fail_calloc_in = 0;
    assert_int_equal(st, RR_STATUS_RESOURCE_EXHAUSTED);
    assert_null(reply);
    assert_non_null(msg);
    free(msg);

    st = rr_channel_call_sync(fx->ch, NULL, &req.base, NULL, &reply, &msg);
    assert_int_equal(st, RR_STATUS_INVALID_ARGUMENT);
    assert_non_null(msg);
    free(msg);

    st = rr_channel_call_sync(NULL, &test_methods[M_ECHO], &req.base, NULL,
                              &reply, &msg);
    assert_int_equal(st, RR_STATUS_INVALID_ARGUMENT);
    assert_non_null(msg);
    free(msg);

    char *v = malloc(9000);
    assert_non_null(v);
    memset(v, 'v', 9000);
    rr_metadata md = {"k", (const uint8_t *) v, 9000};
    rr_call_opts co = {.metadata = &md, .n_metadata = 1};
    st = rr_channel_call_sync(fx->ch, &test_methods[M_ECHO], &req.base, &co,
                              &reply, &msg);
    free(v);
    assert_int_equal(st, RR_STATUS_INVALID_ARGUMENT);
    assert_non_null(msg);
    free(msg);

    st = rr_channel_call_sync(fx->ch, &test_methods[M_ECHO], &req.base, NULL,
                              &reply, &msg);
    assert_int_equal(st, RR_STATUS_OK);
    assert_non_null(reply);
    assert_string_equal(msg, "");
    free(msg);
    protobuf_c_message_free_unpacked(reply, NULL);

    // From inside a callback it refuses, with a message too.
    sync_in si = {.ch = fx->ch};
    assert_int_equal(rr_channel_call(fx->ch, &test_methods[M_ECHO], &req.base,
                                     NULL, sync_in_cb, &si, NULL),
                     RR_OK);
    si.p.returned = true;
    wait_probe(fx, &si.p);
    assert_int_equal(si.p.status, RR_STATUS_FAILED_PRECONDITION);
}

// ------------------------------------------------------------ metadata

static void
test_channel_reserved_metadata_keys_refused(void **state)
{
    fixture *fx = *state;
    rr_metadata md = {"rr-trace", (const uint8_t *) "x", 1};
    rr_call_opts co = {.metadata = &md, .n_metadata = 1};
    probe p, ok;

    assert_int_equal(call_probe(fx->ch, M_META, "rr-trace", 0, &co, &p, NULL),
                     RR_EINVAL);
    md.key = "rr-";
    assert_int_equal(call_probe(fx->ch, M_META, "rr-", 0, &co, &p, NULL),
                     RR_EINVAL);
    // Keys are case-sensitive: only "rr-" is reserved.
    md.key = "rr";
    assert_int_equal(call_probe(fx->ch, M_META, "rr", 0, &co, &ok, NULL),
                     RR_OK);
    wait_probe(fx, &ok);
    assert_string_equal(ok.text, "x");
    assert_int_equal(p.runs, 0);
}

// PROTOCOL.md section 4: each side respects the peer's limits.  The
// server advertises 64 bytes of request metadata; the channel refuses a
// call over that itself (RESOURCE_EXHAUSTED, from the loop) and never
// sends it, also when the call was queued before the limit was known.
static void
test_channel_respects_server_metadata_limit(void **state)
{
    fixture *fx = *state;
    rr_server_opts so;
    char v[100];
    rr_metadata md = {"k", (const uint8_t *) v, sizeof(v)};
    rr_call_opts co = {.metadata = &md, .n_metadata = 1};
    probe p;

    memset(v, 'v', sizeof(v));
    rr_server_opts_init(&so);
    so.max_metadata_size = 64;
    for (int queued = 0; queued < 2; queued++) {
        assert_int_equal(fx_restart(fx, &so, NULL), 0);
        if (!queued) { // connected first: the limit is known
            assert_int_equal(
                call_probe(fx->ch, M_ECHO, "warm", 0, NULL, &p, NULL), RR_OK);
            wait_probe(fx, &p);
        }
        assert_int_equal(call_probe(fx->ch, M_META, "k", 0, &co, &p, NULL),
                         RR_OK);
        wait_probe(fx, &p);
        assert_false(p.early);
        assert_int_equal(p.status, RR_STATUS_RESOURCE_EXHAUSTED);
        assert_non_null(
            strstr(p.message, "exceeds the server's 64-byte limit"));
    }
    md.value_len = 10;
    assert_int_equal(call_probe(fx->ch, M_META, "k", 0, &co, &p, NULL), RR_OK);
    wait_probe(fx, &p);
    assert_int_equal(p.status, RR_STATUS_OK);
    assert_string_equal(p.text, "vvvvvvvvvv");
}

// Reads REQUEST frames from a raw server's side until n, and writes
// their Echo texts into texts (up to 8 bytes each).
static void
read_requests(rawpeer *p, size_t n, char texts[][8])
{
    for (size_t i = 0; i < n;) {
        rr_frame f;
        assert_true(rawpeer_frame(p, &f));
        if (f.type != RR_FRAME_REQUEST)
            continue;
        Rrtest__Echo *e = rrtest__echo__unpack(NULL, rr__frame_payload_len(&f),
                                               rr__frame_payload(&f));
        assert_non_null(e);
        snprintf(texts[i++], 8, "%s", e->text);
        rrtest__echo__free_unpacked(e, NULL);
    }
}

// A GOAWAY sends the calls above its last_call_id back to the queue,
// which sends them again on a new connection in the order they were
// made (they came back last-first).
static void
test_channel_goaway_requeues_in_order(void **state)
{
    fixture *fx = *state;
    uint16_t port;
    int l = rawpeer_listen(&port);
    char target[64], texts[5][8];
    rr_channel *ch;
    outcome o[5];

    snprintf(target, sizeof(target), "127.0.0.1:%u", (unsigned) port);
    assert_int_equal(rr_channel_new(&ch, fx->loop, target, NULL), RR_OK);
    for (int i = 0; i < 5; i++) {
        Rrtest__Echo req = RRTEST__ECHO__INIT;
        char text[8];
        snprintf(text, sizeof(text), "c%d", i);
        req.text = text;
        memset(&o[i], 0, sizeof(o[i]));
        assert_int_equal(rr_channel_call(ch, &test_methods[M_ECHO], &req.base,
                                         NULL, result_cb, &o[i], NULL),
                         RR_OK);
    }
    rawpeer p, q;
    rawpeer_accept(&p, fx, l);
    rawpeer_handshake(&p);
    read_requests(&p, 5, texts);
    for (int i = 0; i < 5; i++) {
        char want[8];
        snprintf(want, sizeof(want), "c%d", i);
        assert_string_equal(texts[i], want);
    }
    rawpeer_send_goaway(&p, 1, RR_GOAWAY_NO_ERROR, "moving");
    rawpeer_accept(&q, fx, l);
    rawpeer_handshake(&q);
    read_requests(&q, 4, texts);
    for (int i = 0; i < 4; i++) {
        char want[8];
        snprintf(want, sizeof(want), "c%d", i + 1);
        if (strcmp(texts[i], want) != 0)
            fail_msg("request %d on the new connection is %s, not %s", i,
                     texts[i], want);
    }
    rawpeer_close(&p);
    rawpeer_close(&q);
    for (int i = 0; i < 5; i++)
        fx_wait(fx, &o[i]);
    rr_channel_free(ch);
    close(l);
}

typedef struct raw_seen {
    int runs;
    rr_status status;
    bool no_reply; // res->reply stayed NULL
    char text[64];
    char message[64];
} raw_seen;

static void
raw_cb(const rr_result *res, void *arg)
{
    raw_seen *r = arg;

    r->runs++;
    r->status = res->status;
    r->no_reply = res->reply == NULL;
    snprintf(r->message, sizeof(r->message), "%s", res->message);
    if (res->reply_data != NULL) {
        Rrtest__Echo *e =
            rrtest__echo__unpack(NULL, res->reply_len, res->reply_data);
        assert_non_null(e);
        snprintf(r->text, sizeof(r->text), "%s", e->text);
        rrtest__echo__free_unpacked(e, NULL);
    }
}

// rr_channel_call_raw: bytes in, bytes out, by the method's name; the
// statuses as for any call; a name that is no method's full name is
// refused before anything is sent.
static void
test_channel_raw_calls(void **state)
{
    fixture *fx = *state;
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    uint8_t buf[64];
    raw_seen r = {0}, f = {0}, u = {0};

    req.text = (char *) "raw";
    size_t n = rrtest__echo__pack(&req, buf);
    assert_int_equal(rr_channel_call_raw(fx->ch, "/rrtest.Test/Echo", buf, n,
                                         NULL, raw_cb, &r, NULL),
                     RR_OK);
    assert_int_equal(rr_channel_call_raw(fx->ch, "/rrtest.Test/Fail", buf, n,
                                         NULL, raw_cb, &f, NULL),
                     RR_OK);
    assert_int_equal(rr_channel_call_raw(fx->ch, "/rrtest.Test/Nope", NULL, 0,
                                         NULL, raw_cb, &u, NULL),
                     RR_OK);
    assert_int_equal(r.runs + f.runs + u.runs, 0); // never before return
    while ((r.runs == 0 || f.runs == 0 || u.runs == 0) && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(r.status, RR_STATUS_OK);
    assert_true(r.no_reply);
    assert_string_equal(r.text, "raw");
    assert_int_equal(f.status, RR_STATUS_NOT_FOUND);
    assert_string_equal(f.message, "no such key");
    assert_int_equal(u.status, RR_STATUS_UNIMPLEMENTED);
    assert_int_equal(rr_channel_call_raw(fx->ch, "rrtest.Test/Echo", buf, n,
                                         NULL, raw_cb, &r, NULL),
                     RR_EINVAL);
    assert_int_equal(rr_channel_call_raw(fx->ch, "/rrtest.Test/Echo", NULL, 3,
                                         NULL, raw_cb, &r, NULL),
                     RR_EINVAL);
}

typedef struct raw_free {
    rr_channel *ch;
    int runs, others;
} raw_free;

static void
raw_free_cb(const rr_result *res, void *arg)
{
    raw_free *f = arg;

    (void) res;
    f->runs++;
    rr_channel_free(f->ch); // from its own callback, with calls pending
}

static void
raw_other_cb(const rr_result *res, void *arg)
{
    raw_free *f = arg;

    assert_int_equal(res->status, RR_STATUS_UNAVAILABLE);
    assert_null(res->reply_data);
    f->others++;
}

// A raw call's callback frees its channel while other raw calls wait:
// each callback runs once, the pending ones inside the free.
static void
test_channel_raw_call_frees_channel(void **state)
{
    fixture *fx = *state;
    raw_free f = {0};
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    uint8_t buf[64];

    assert_int_equal(rr_channel_new(&f.ch, fx->loop, fx->target, NULL), RR_OK);
    req.text = (char *) "x";
    size_t n = rrtest__echo__pack(&req, buf);
    assert_int_equal(rr_channel_call_raw(f.ch, "/rrtest.Test/Echo", buf, n,
                                         NULL, raw_free_cb, &f, NULL),
                     RR_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rr_channel_call_raw(f.ch, "/rrtest.Test/Hold", buf, n,
                                             NULL, raw_other_cb, &f, NULL),
                         RR_OK);
    while (f.runs == 0 && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    assert_int_equal(f.runs, 1);
    assert_int_equal(f.others, 3);
    fx_run_for(fx, 0.02);
}

// ------------------------------------------- a server on another loop

// A server on a loop and thread of its own that holds every call, and
// tells the test's loop (an ev_async) once it holds `want` of them: the
// channel's loop then has nothing to wake it but its own output.
typedef struct far_server {
    struct ev_loop *loop, *test_loop;
    rr_server *srv;
    ev_async stop, reached;
    pthread_t th;
    pthread_mutex_t mu;
    rr_call *held[128];
    int n, want;
    bool got_all;
    char target[64];
} far_server;

static void
far_hold(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    far_server *fs = arg;

    (void) req;
    pthread_mutex_lock(&fs->mu);
    if (fs->n < 128)
        fs->held[fs->n++] = call;
    else
        rr_call_fail(call, RR_STATUS_ABORTED, "too many");
    if (fs->n == fs->want)
        ev_async_send(fs->test_loop, &fs->reached);
    pthread_mutex_unlock(&fs->mu);
}

static void
far_stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) w;
    (void) revents;
    ev_break(loop, EVBREAK_ALL);
}

static void
far_reached_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) loop;
    (void) revents;
    ((far_server *) w->data)->got_all = true;
}

static void *
far_main(void *arg)
{
    far_server *fs = arg;

    ev_run(fs->loop, 0);
    for (int i = 0; i < fs->n; i++)
        rr_call_fail(fs->held[i], RR_STATUS_ABORTED, "test over");
    rr_server_free(fs->srv);
    ev_async_stop(fs->loop, &fs->stop);
    ev_loop_destroy(fs->loop);
    return NULL;
}

static void
far_start(far_server *fs, struct ev_loop *test_loop)
{
    rr_handler_cb hs[8];

    memset(fs, 0, sizeof(*fs));
    for (int i = 0; i < 8; i++)
        hs[i] = far_hold;
    hs[M_UNSET] = NULL;
    pthread_mutex_init(&fs->mu, NULL);
    fs->test_loop = test_loop;
    fs->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(fs->loop);
    assert_int_equal(rr_server_new(&fs->srv, fs->loop, NULL), RR_OK);
    assert_int_equal(
        rr_server_add_service(fs->srv, &rrtest__test__descriptor, hs, fs),
        RR_OK);
    assert_int_equal(rr_server_listen(fs->srv, "127.0.0.1:0"), RR_OK);
    snprintf(fs->target, sizeof(fs->target), "127.0.0.1:%u",
             (unsigned) rr_server_port(fs->srv));
    ev_async_init(&fs->stop, far_stop_cb);
    ev_async_start(fs->loop, &fs->stop);
    ev_async_init(&fs->reached, far_reached_cb);
    fs->reached.data = fs;
    ev_async_start(test_loop, &fs->reached);
    assert_int_equal(pthread_create(&fs->th, NULL, far_main, fs), 0);
}

// Runs the test's loop until the server holds want calls, or 2 s pass.
static bool
far_wait(far_server *fs, fixture *fx, int want)
{
    bool late = false;
    ev_timer t;

    pthread_mutex_lock(&fs->mu);
    fs->want = want;
    fs->got_all = fs->n >= want;
    pthread_mutex_unlock(&fs->mu);
    ev_timer_init(&t, fx_flag_cb, 2.0, 0.);
    t.data = &late;
    ev_timer_start(fx->loop, &t);
    while (!fs->got_all && !late && !fx->guard_fired)
        ev_run(fx->loop, EVRUN_ONCE);
    ev_timer_stop(fx->loop, &t);
    return fs->got_all;
}

static void
far_stop(far_server *fs, struct ev_loop *test_loop)
{
    ev_async_send(fs->loop, &fs->stop);
    pthread_join(fs->th, NULL);
    ev_async_stop(test_loop, &fs->reached);
    pthread_mutex_destroy(&fs->mu);
}

// rawrpc.h: calls wait while 4 MiB of requests wait to be written, and go
// as room comes.  Here the room comes at once (loopback takes the 4 MiB in
// one write from the loop's flush list) and nothing else will wake the
// loop: the waiting calls must go without a wake-up of their own.
static void
test_channel_calls_past_the_output_limit_go_as_room_comes(void **state)
{
    fixture *fx = *state;
    static outcome o[81];
    static uint8_t data[65536];
    far_server fs;
    rr_channel *ch;

    far_start(&fs, fx->loop);
    assert_int_equal(rr_channel_new(&ch, fx->loop, fs.target, NULL), RR_OK);
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    assert_int_equal(rr_channel_call(ch, &test_methods[M_HOLD], &req.base, NULL,
                                     result_cb, &o[0], NULL),
                     RR_OK);
    assert_true(far_wait(&fs, fx, 1)); // connected
    req.data.data = data;
    req.data.len = sizeof(data);
    for (int i = 1; i <= 80; i++) // 5 MiB: 64 go, 16 wait for room
        assert_int_equal(rr_channel_call(ch, &test_methods[M_HOLD], &req.base,
                                         NULL, result_cb, &o[i], NULL),
                         RR_OK);
    bool all = far_wait(&fs, fx, 81);
    far_stop(&fs, fx->loop);
    rr_channel_free(ch); // the held calls end with the server
    assert_true(all);
}

int
main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); // "test_channel_sync*"
#define T(name)                                                                \
    cmocka_unit_test_setup_teardown(name, fx_group_setup, fx_group_teardown)
    const struct CMUnitTest tests[] = {
        T(test_channel_callback_never_before_return),
        T(test_channel_free_in_queue_failure_callback),
        T(test_channel_free_from_every_callback),
        T(test_channel_big_calls_wait_for_output),
        T(test_channel_pool_keeps_no_big_buffers),
        T(test_channel_retired_connection_closes),
        T(test_channel_id_not_reused_after_alloc_failure),
        T(test_channel_cancel_by_token),
        T(test_channel_sync_statuses_and_messages),
        T(test_channel_reserved_metadata_keys_refused),
        T(test_channel_respects_server_metadata_limit),
        T(test_channel_goaway_requeues_in_order),
        T(test_channel_raw_calls),
        T(test_channel_raw_call_frees_channel),
        T(test_channel_calls_past_the_output_limit_go_as_room_comes),
    };
#undef T
    return cmocka_run_group_tests_name("channel", tests, NULL, NULL);
}
