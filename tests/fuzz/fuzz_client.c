// SPDX-License-Identifier: MIT
//
// fuzz_client.c -- a channel's whole response path, driven by the fuzzer
// playing the server.  The channel connects over a Unix socket to a
// listener in this process (no network); the input is a script: write raw
// bytes to the channel, write well-formed frames (preface, SETTINGS,
// RESPONSE to a call it sent, with good, bad or failing payloads, GOAWAY,
// PING, PONG, extension frames, frames a server must not send), start
// calls (with deadlines, metadata, waiting for ready), cancel them, run
// the loop, read what the channel wrote, drop the connection, accept its
// reconnection, let a little time pass.
//
// Besides the sanitizers, it checks that every call's callback runs
// exactly once: never twice, and for every call by the time the channel
// is freed.

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzzloop.h"
#include "codec/buf.h"
#include "codec/frame.h"
#include "codec/meta.h"
#include "codec/preface.h"
#include "rawrpc/rawrpc.h"
#include "testmsg.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CALLS 64
#define MAX_SENT  256
#define MAX_WAITS 3

static const rr_method m_echo = {"/rrtest.Test/Echo", &rrtest__echo__descriptor,
                                 &rrtest__echo__descriptor};

typedef struct fz {
    struct ev_loop *loop;
    rr_channel *ch;
    int lfd;  // our listener
    int peer; // the channel's connection, our end; -1 when none
    int runs[MAX_CALLS];
    uint64_t tokens[MAX_CALLS];
    int n_calls;
    rr_buf in; // the channel's output
    bool preface_ok;
    uint32_t sent[MAX_SENT]; // REQUEST IDs it sent, in order
    int n_sent;
    int waits;
} fz;

static void
result_cb(const rr_result *res, void *arg)
{
    int *runs = arg;

    (void) res;
    if (++*runs > 1)
        abort(); // a callback ran twice
}

static void
drain(fz *z)
{
    uint8_t buf[4096];

    while (z->peer >= 0) {
        ssize_t n = recv(z->peer, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        if (rr__buf_append(&z->in, buf, (size_t) n) != RR_OK)
            abort(); // the channel wrote more than 4 MiB unread
    }
    for (;;) {
        const uint8_t *p = rr__buf_data(&z->in);
        size_t len = rr__buf_size(&z->in);
        ssize_t used;
        if (!z->preface_ok) {
            uint16_t version;
            if ((used = rr__preface_decode(p, len, &version)) < 0)
                abort(); // the channel's own preface is malformed
            if (used == 0)
                return;
            z->preface_ok = true;
        } else {
            rr_frame f;
            if ((used = rr__frame_decode(p, len, UINT32_MAX, &f)) < 0)
                abort(); // the channel wrote a frame that does not decode
            if (used == 0)
                return;
            if (f.type == RR_FRAME_REQUEST && z->n_sent < MAX_SENT)
                z->sent[z->n_sent++] = f.call_id;
        }
        rr__buf_consume(&z->in, (size_t) used);
    }
}

static void
peer_write(fz *z, const void *p, size_t len)
{
    if (z->peer >= 0 && len > 0) {
        ssize_t n = send(z->peer, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void) n; // a full socket drops the rest
    }
}

// Takes the channel's pending connection, if there is one.
static void
accept_peer(fz *z)
{
    int fd = accept4(z->lfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return;
    if (z->peer >= 0)
        close(z->peer);
    z->peer = fd;
    rr__buf_consume(&z->in, rr__buf_size(&z->in));
    z->preface_ok = false;
    z->n_sent = 0;
}

static uint32_t
pick_id(const fz *z, uint8_t b)
{
    if (z->n_sent == 0 || b >= 0xF0)
        return b; // one never sent
    return z->sent[b % z->n_sent];
}

// A response: status OK with a good or garbled payload, or a failure.
static void
put_response(fz *z, rr_buf *b, const uint8_t *d)
{
    Rawrpc__V1__ResponseMeta meta = RAWRPC__V1__RESPONSE_META__INIT;
    Rrtest__Echo e = RRTEST__ECHO__INIT;
    char text[] = "reply", msg[] = "fuzz failure";
    static const uint8_t junk[] = {0xFF, 0xFF, 0xFF};
    uint32_t id = pick_id(z, d[1]);

    e.text = text;
    switch (d[2] % 4) {
    case 0:
        rr__call_put(b, RR_FRAME_RESPONSE, id, NULL, &e.base, 1 << 20);
        break;
    case 1:
        rr__call_put_raw(b, RR_FRAME_RESPONSE, id, NULL, junk, sizeof(junk),
                         1 << 20);
        break;
    case 2:
        meta.status = d[2] % 20;
        meta.message = msg;
        rr__call_put(b, RR_FRAME_RESPONSE, id, &meta.base, NULL, 1 << 20);
        break;
    default: { // metadata that does not parse
        rr_frame f = {.length = 3,
                      .type = RR_FRAME_RESPONSE,
                      .meta_len = 3,
                      .call_id = id};
        uint8_t *p;
        if (rr__frame_start(b, &f, &p) == RR_OK) {
            memcpy(p, junk, 3);
            rr__buf_commit(b, RR_FRAME_HEADER_SIZE + 3);
        }
    }
    }
}

static size_t
op_frame(fz *z, const uint8_t *d, size_t n)
{
    rr_buf b;

    if (n < 3)
        return n;
    rr__buf_init(&b, 1 << 20);
    switch (d[0] % 8) {
    case 0: {
        rr_settings s;
        rr__settings_init(&s);
        s.max_concurrent_calls = 1 + d[1] % 8;
        s.max_frame_size = 16384u << (d[2] % 4);
        rr__preface_put(&b, 1);
        rr__settings_put(&b, &s);
        break;
    }
    case 1:
    case 2:
    case 3:
        put_response(z, &b, d);
        break;
    case 4:
        rr__frame_put_goaway(&b, pick_id(z, d[1]), d[2] % 10, "fuzz");
        break;
    case 5: {
        uint8_t ping[RR_PING_SIZE] = {d[1], d[2]};
        rr__frame_put_ping(&b, d[1] & 1 ? RR_FRAME_PONG : RR_FRAME_PING, ping);
        break;
    }
    case 6: // a frame only clients send
        rr__frame_put_cancel(&b, pick_id(z, d[1]));
        break;
    default: // an extension frame, to be skipped
        rr__frame_put(&b, (uint8_t) (0x80 | d[1]), pick_id(z, d[2]), NULL, 0);
        break;
    }
    peer_write(z, rr__buf_data(&b), rr__buf_size(&b));
    rr__buf_fini(&b);
    return 3;
}

static size_t
op_call(fz *z, const uint8_t *d, size_t n)
{
    rr_call_opts o = {0};
    rr_metadata md = {"k", (const uint8_t *) "v", 1};
    Rrtest__Echo req = RRTEST__ECHO__INIT;
    char text[] = "call";

    if (n < 1 || z->n_calls == MAX_CALLS)
        return n < 1 ? n : 1;
    req.text = text;
    o.timeout = d[0] & 1 ? 0.0005 * (d[0] >> 4) : 0;
    o.wait_for_ready = d[0] & 2;
    if (d[0] & 4) {
        o.metadata = &md;
        o.n_metadata = 1;
    }
    int i = z->n_calls;
    if (rr_channel_call(z->ch, &m_echo, &req.base, &o, result_cb, &z->runs[i],
                        &z->tokens[i]) == RR_OK)
        z->n_calls++;
    return 1;
}

static void
op_wait(fz *z)
{
    if (z->waits++ < MAX_WAITS)
        fuzz_run_for(z->loop, 0.002);
}

static void
run_script(fz *z, const uint8_t *d, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t op = d[i++];
        switch (op % 10) {
        case 0: {
            size_t len = i < n ? d[i++] : 0;
            len = len < n - i ? len : n - i;
            peer_write(z, d + i, len);
            i += len;
            break;
        }
        case 1:
        case 2:
            i += op_frame(z, d + i, n - i);
            break;
        case 3:
            ev_run(z->loop, EVRUN_NOWAIT);
            break;
        case 4:
            drain(z);
            break;
        case 5:
            i += op_call(z, d + i, n - i);
            break;
        case 6:
            if (z->n_calls > 0 && i < n)
                rr_channel_cancel(z->ch, z->tokens[d[i++] % z->n_calls]);
            break;
        case 7:
            if (z->peer >= 0) {
                close(z->peer);
                z->peer = -1;
            }
            break;
        case 8:
            accept_peer(z);
            break;
        default:
            op_wait(z);
            break;
        }
    }
}

static void
quiet(rr_log_level level, const char *msg, void *arg)
{
    (void) level;
    (void) msg;
    (void) arg;
}

// One listener for the whole run, on a path of this process's own.
static int
listener(char *path, size_t pathsz)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/rr-fuzz-client-%d.sock",
             (int) getpid());
    snprintf(path, pathsz, "unix:%s", sa.sun_path);
    unlink(sa.sun_path);
    if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
        listen(fd, 64) != 0)
        abort();
    return fd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz z;
    static int lfd = -1;
    static char target[128];
    rr_channel_opts o;

    if (lfd < 0)
        lfd = listener(target, sizeof(target));
    rr_log_set(quiet, NULL, RR_LOG_OFF);
    memset(&z, 0, sizeof(z));
    z.lfd = lfd;
    z.peer = -1;
    rr__buf_init(&z.in, 1 << 22);
    z.loop = ev_loop_new(EVFLAG_AUTO);
    rr_channel_opts_init(&o);
    o.connect_timeout = 0.001;
    o.heartbeat_interval = 0.001;
    o.heartbeat_timeout = 0.001;
    o.backoff_initial = 0.0005;
    o.backoff_max = 0.001;
    if (z.loop == NULL || rr_channel_new(&z.ch, z.loop, target, &o) != RR_OK)
        abort();

    run_script(&z, data, size);

    // Freeing the channel completes every call still pending.
    rr_channel_free(z.ch);
    for (int i = 0; i < z.n_calls; i++) {
        if (z.runs[i] != 1)
            abort(); // a call that never completed
    }
    ev_run(z.loop, EVRUN_NOWAIT);
    if (z.peer >= 0)
        close(z.peer);
    for (int fd; (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0;)
        close(fd); // connections the script never took
    ev_loop_destroy(z.loop);
    rr__buf_fini(&z.in);
    return 0;
}
