// SPDX-License-Identifier: MIT
//
// fuzz_server.c -- a whole server connection, driven by the fuzzer.  An
// rr_server on a private loop adopts one end of a Unix socketpair (no
// network, no listener); the input is a script of operations on the other
// end: write raw bytes, write well-formed frames (preface, SETTINGS,
// REQUEST with or without deadline and metadata, CANCEL, PING, GOAWAY),
// run the loop, read what the server wrote, complete or fail held calls,
// shut the write side, let a little time pass (heartbeats and deadlines
// fire), shut the server down.
//
// Besides the sanitizers, it checks what the server writes: a valid
// preface, SETTINGS first, frames that decode, and at most one RESPONSE
// per call ID, only for IDs that were sent as REQUESTs.

#include <errno.h>
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
#include "server/server.h"
#include "testmsg.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HELD  64
#define MAX_IDS   4096
#define MAX_WAITS 3

typedef struct fz {
    struct ev_loop *loop;
    rr_server *srv;
    int peer; // our end; -1 once closed
    rr_call *held[MAX_HELD];
    size_t n_held;
    // what we sent, parsed as the server parses it: REQUEST IDs
    rr_buf out;
    bool out_preface, out_dead; // past our preface; unparsable from here
    uint8_t sent[MAX_IDS / 8];
    uint8_t answered[MAX_IDS / 8];
    uint32_t next_id;
    rr_buf in;       // the server's output, being parsed
    bool preface_ok; // the server's preface was read
    bool settings_ok;
    int waits;
} fz;

static void
h_echo(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) arg;
    rr_call_reply(call, req);
}

static void
h_hold(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    fz *z = arg;

    (void) req;
    if (z->n_held == MAX_HELD) {
        rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "fuzz: full");
        return;
    }
    z->held[z->n_held++] = call;
}

static void
h_fail(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    (void) req;
    (void) arg;
    rr_call_fail(call, RR_STATUS_FAILED_PRECONDITION, "fuzz: fails");
}

static void
h_meta(rr_call *call, const ProtobufCMessage *req, void *arg)
{
    Rrtest__Echo out = RRTEST__ECHO__INIT;
    size_t len = 0;
    const uint8_t *v = rr_call_metadata(call, "k", &len);

    (void) req;
    (void) arg;
    out.data.data = (uint8_t *) v;
    out.data.len = v != NULL ? len : 0;
    rr_call_reply(call, &out.base);
}

static void
complete_held(fz *z, bool ok)
{
    if (z->n_held == 0)
        return;
    rr_call *call = z->held[0];
    memmove(z->held, z->held + 1, --z->n_held * sizeof(rr_call *));
    if (ok) {
        Rrtest__Echo out = RRTEST__ECHO__INIT;
        rr_call_reply(call, &out.base);
    } else {
        rr_call_fail(call, RR_STATUS_ABORTED, "fuzz: aborted");
    }
}

static bool
bit(const uint8_t *map, uint32_t id)
{
    return id < MAX_IDS && (map[id / 8] >> (id % 8)) & 1;
}

static void
set_bit(uint8_t *map, uint32_t id)
{
    if (id < MAX_IDS)
        map[id / 8] |= (uint8_t) (1u << (id % 8));
}

// Checks the server's output so far: preface, SETTINGS first, frames
// that decode, one RESPONSE per REQUEST sent.
static void
parse_output(fz *z)
{
    for (;;) {
        const uint8_t *p = rr__buf_data(&z->in);
        size_t len = rr__buf_size(&z->in);
        if (!z->preface_ok) {
            uint16_t version;
            ssize_t n = rr__preface_decode(p, len, &version);
            if (n < 0)
                abort(); // the server's own preface is malformed
            if (n == 0)
                return;
            z->preface_ok = true;
            rr__buf_consume(&z->in, (size_t) n);
            continue;
        }
        rr_frame f;
        ssize_t n = rr__frame_decode(p, len, UINT32_MAX, &f);
        if (n < 0)
            abort(); // the server wrote a frame that does not decode
        if (n == 0)
            return;
        if (!z->settings_ok && f.type != RR_FRAME_SETTINGS)
            abort(); // SETTINGS must come first
        z->settings_ok = true;
        if (f.type == RR_FRAME_RESPONSE) {
            if (f.call_id < MAX_IDS &&
                (!bit(z->sent, f.call_id) || bit(z->answered, f.call_id)))
                abort(); // answered twice, or never asked
            set_bit(z->answered, f.call_id);
        }
        rr__buf_consume(&z->in, (size_t) n);
    }
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
            rr__buf_consume(&z->in, rr__buf_size(&z->in)); // too much: skip
        parse_output(z);
    }
}

// Follows the byte stream we sent the way the server reads it, to know
// which call IDs were really sent as REQUESTs.
static void
note_sent(fz *z, const uint8_t *p, size_t len)
{
    if (z->out_dead || rr__buf_append(&z->out, p, len) != RR_OK) {
        z->out_dead = true;
        return;
    }
    for (;;) {
        const uint8_t *d = rr__buf_data(&z->out);
        size_t n = rr__buf_size(&z->out);
        if (!z->out_preface) {
            uint16_t version;
            ssize_t used = rr__preface_decode(d, n, &version);
            if (used <= 0) {
                z->out_dead = used < 0; // the server closes here
                return;
            }
            z->out_preface = true;
            rr__buf_consume(&z->out, (size_t) used);
            continue;
        }
        rr_frame f;
        ssize_t used = rr__frame_decode(d, n, UINT32_MAX, &f);
        if (used <= 0) {
            z->out_dead = used < 0;
            return;
        }
        if (f.type == RR_FRAME_REQUEST)
            set_bit(z->sent, f.call_id);
        rr__buf_consume(&z->out, (size_t) used);
    }
}

static void
peer_write(fz *z, const void *p, size_t len)
{
    if (z->peer < 0 || len == 0)
        return;
    // The socket buffer is large; a full one just drops the rest.
    ssize_t n = send(z->peer, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0)
        note_sent(z, p, (size_t) n);
}

static void
send_frames(fz *z, rr_buf *b)
{
    peer_write(z, rr__buf_data(b), rr__buf_size(b));
    rr__buf_fini(b);
}

// A well-formed frame chosen by the next bytes of the script.
static size_t
op_frame(fz *z, const uint8_t *d, size_t n)
{
    static const char *const methods[] = {"/rrtest.Test/Echo",
                                          "/rrtest.Test/Hold",
                                          "/rrtest.Test/Fail",
                                          "/rrtest.Test/Meta",
                                          "/rrtest.Test/Unset",
                                          "/nope.X/Y",
                                          ""};
    rr_buf b;

    if (n < 3)
        return n;
    rr__buf_init(&b, 1 << 20);
    switch (d[0] % 6) {
    case 0: { // preface and SETTINGS
        rr_settings s;
        rr__settings_init(&s);
        s.max_frame_size = 16384u << (d[1] % 4);
        rr__preface_put(&b, 1);
        rr__settings_put(&b, &s);
        break;
    }
    case 1:
    case 2: { // REQUEST
        Rawrpc__V1__RequestMeta meta = RAWRPC__V1__REQUEST_META__INIT;
        Rawrpc__V1__MetadataEntry e = RAWRPC__V1__METADATA_ENTRY__INIT;
        Rawrpc__V1__MetadataEntry *ep = &e;
        Rrtest__Echo msg = RRTEST__ECHO__INIT;
        char method[32], key[] = "k", text[] = "fuzz";
        uint8_t val[4] = {d[1], d[2], 0, 1};
        snprintf(method, sizeof(method), "%s",
                 methods[d[1] % (sizeof(methods) / sizeof(methods[0]))]);
        meta.method = method;
        meta.timeout_us = d[2] & 1 ? (uint64_t) (d[2] >> 1) * 50 : 0;
        if (d[2] & 0x80) {
            e.key = key;
            e.value.data = val;
            e.value.len = sizeof(val);
            meta.n_metadata = 1;
            meta.metadata = &ep;
        }
        msg.text = text;
        // Usually the next ID; sometimes a repeated or lower one.
        uint32_t id = d[0] & 0x40 ? z->next_id : ++z->next_id;
        rr__call_put(&b, RR_FRAME_REQUEST, id, &meta.base, &msg.base, 1 << 20);
        break;
    }
    case 3: // CANCEL one of the calls sent
        rr__frame_put_cancel(&b, z->next_id ? 1 + d[1] % z->next_id : 0);
        break;
    case 4: { // PING
        uint8_t ping[RR_PING_SIZE] = {d[1], d[2]};
        rr__frame_put_ping(&b, RR_FRAME_PING, ping);
        break;
    }
    default: // GOAWAY from the client
        rr__frame_put_goaway(&b, 0, d[1] % 10, "fuzz");
        break;
    }
    send_frames(z, &b);
    return 3;
}

// Lets 2 ms pass on the loop: heartbeats (1 ms) and short deadlines fire.
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
        case 0: { // raw bytes
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
            complete_held(z, true);
            break;
        case 6:
            complete_held(z, false);
            break;
        case 7:
            if (z->peer >= 0)
                shutdown(z->peer, SHUT_WR);
            break;
        case 8:
            op_wait(z);
            break;
        default:
            rr_server_shutdown(z->srv, 0.001, NULL, NULL);
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz z;
    rr_handler_cb handlers[8] = {h_echo, h_hold, h_fail, h_echo, h_meta};
    rr_server_opts o;
    int sv[2];

    rr_log_set(quiet, NULL, RR_LOG_OFF); // bad input is expected
    memset(&z, 0, sizeof(z));
    rr__buf_init(&z.in, 1 << 22);
    rr__buf_init(&z.out, 1 << 22);
    z.loop = ev_loop_new(EVFLAG_AUTO);
    rr_server_opts_init(&o);
    o.heartbeat_interval = 0.001;
    o.heartbeat_timeout = 0.001;
    o.handshake_timeout = 0.001;
    o.max_concurrent_calls = 8;
    o.out_high_water = (size_t) 64 * 1024;
    o.out_low_water = (size_t) 16 * 1024;
    if (z.loop == NULL || rr_server_new(&z.srv, z.loop, &o) != RR_OK ||
        rr_server_add_service(z.srv, &rrtest__test__descriptor, handlers, &z) !=
            RR_OK ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "fuzz"};
    rr__server_adopt(z.srv, sv[0], (const struct sockaddr *) &sa, sizeof(sa));
    z.peer = sv[1];

    run_script(&z, data, size);

    // The end: the peer goes away; held calls are completed, as the
    // handler contract requires; everything is freed.
    ev_run(z.loop, EVRUN_NOWAIT);
    drain(&z);
    close(z.peer);
    z.peer = -1;
    ev_run(z.loop, EVRUN_NOWAIT);
    while (z.n_held > 0)
        complete_held(&z, true);
    rr_server_free(z.srv);
    ev_run(z.loop, EVRUN_NOWAIT);
    ev_loop_destroy(z.loop);
    rr__buf_fini(&z.in);
    rr__buf_fini(&z.out);
    return 0;
}
