// SPDX-License-Identifier: MIT
//
// baseline_server.c -- the practical limit rawrpc is measured against: a
// libev echo server with an 8-byte header (length, request ID; big
// endian), protobuf-c unpack of the request and pack of the reply, and
// nothing else: no deadlines, limits, heartbeats or metadata.  It reads
// up to 256 KiB per wake-up, answers every complete frame, and writes
// once per read.
//
// --raw makes it the raw echo, the physical ceiling of the loopback: the
// same frames, each body copied back as it came, with no protobuf at all.
//
// --named: each request body starts with the method's name (a length
// byte, then the name), which the server compares with the one it serves
// before it unpacks, as the least any server routing by name must do.
// With rawrpc-bench --pack --named this is the limit of a client that,
// like every RPC client, packs the caller's message and names the method
// on each call (bench/limit-parts.sh).
//
//   baseline-server [--port P] [--raw | --named]   prints "port N",
//                                                  serves until SIGTERM

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo/echo.pb-c.h"

#define READ_MAX ((size_t) 256 * 1024)

static bool raw_echo; // --raw
static bool named;    // --named

// The name --named requests carry: the echo's method (rawrpc's echo.proto).
static const char method_name[] = "/rawrpc.echo.Echo/Echo";

typedef struct bconn {
    ev_io rio, wio;
    int fd;
    uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_cap, out_off;
} bconn;

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
           (uint32_t) p[2] << 8 | p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

static void
bconn_close(struct ev_loop *loop, bconn *c)
{
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

// Makes room for a frame of n body bytes at the end of the output and
// writes its header; returns where the body goes, or NULL.
static uint8_t *
bconn_frame(bconn *c, uint32_t id, size_t n)
{
    if (c->out_len + 8 + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 65536;
        while (cap < c->out_len + 8 + n)
            cap *= 2;
        uint8_t *o = realloc(c->out, cap);
        if (o == NULL)
            return NULL;
        c->out = o;
        c->out_cap = cap;
    }
    put32(c->out + c->out_len, (uint32_t) n);
    put32(c->out + c->out_len + 4, id);
    c->out_len += 8 + n;
    return c->out + c->out_len - n;
}

// Appends the reply to req (its ID, its packed EchoReply; with --raw, the
// request's own bytes).
static int
bconn_answer(bconn *c, uint32_t id, const uint8_t *p, size_t len)
{
    if (raw_echo) {
        uint8_t *body = bconn_frame(c, id, len);
        if (body == NULL)
            return -1;
        memcpy(body, p, len);
        return 0;
    }
    if (named) { // routing: the name must be the served one
        size_t n = len > 0 ? p[0] : 0;
        if (len < 1 + n || n != sizeof(method_name) - 1 ||
            memcmp(p + 1, method_name, n) != 0)
            return -1;
        p += 1 + n;
        len -= 1 + n;
    }
    Rawrpc__Echo__EchoRequest *req =
        rawrpc__echo__echo_request__unpack(NULL, len, p);
    if (req == NULL)
        return -1;
    Rawrpc__Echo__EchoReply rep = RAWRPC__ECHO__ECHO_REPLY__INIT;
    rep.payload = req->payload;
    uint8_t *body =
        bconn_frame(c, id, rawrpc__echo__echo_reply__get_packed_size(&rep));
    if (body != NULL)
        rawrpc__echo__echo_reply__pack(&rep, body);
    rawrpc__echo__echo_request__free_unpacked(req, NULL);
    return body != NULL ? 0 : -1;
}

static int
bconn_flush(struct ev_loop *loop, bconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t) n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        return -1;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        ev_io_stop(loop, &c->wio);
    } else {
        ev_io_start(loop, &c->wio);
    }
    return 0;
}

static void
bconn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    bconn *c = w->data;
    ssize_t n = recv(c->fd, c->in + c->in_len, READ_MAX - c->in_len, 0);

    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        bconn_close(loop, c);
        return;
    }
    c->in_len += (size_t) n;
    size_t off = 0;
    while (c->in_len - off >= 8) {
        uint32_t len = get32(c->in + off);
        if (len > READ_MAX - 8) {
            bconn_close(loop, c);
            return;
        }
        if (c->in_len - off < 8 + (size_t) len)
            break;
        if (bconn_answer(c, get32(c->in + off + 4), c->in + off + 8, len)) {
            bconn_close(loop, c);
            return;
        }
        off += 8 + len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (bconn_flush(loop, c) != 0)
        bconn_close(loop, c);
}

static void
bconn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    bconn *c = w->data;

    if (bconn_flush(loop, c) != 0)
        bconn_close(loop, c);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    int one = 1;

    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        bconn *c = calloc(1, sizeof(*c));
        if (c == NULL || (c->in = malloc(READ_MAX)) == NULL) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        ev_io_init(&c->rio, bconn_read_cb, fd, EV_READ);
        ev_io_init(&c->wio, bconn_write_cb, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_io_start(loop, &c->rio);
    }
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void) w;
    (void) revents;
    ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int one = 1;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            sin.sin_port = htons((uint16_t) strtoul(argv[++i], NULL, 10));
        } else if (strcmp(argv[i], "--raw") == 0) {
            raw_echo = true;
        } else if (strcmp(argv[i], "--named") == 0) {
            named = true;
        } else {
            fprintf(stderr,
                    "usage: baseline-server [--port P] [--raw | --named]\n");
            return 2;
        }
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) != 0 ||
        listen(lfd, 511) != 0) {
        perror("baseline-server");
        return 1;
    }
    getsockname(lfd, (struct sockaddr *) &sin, &len);
    printf("port %u\n", (unsigned) ntohs(sin.sin_port));
    fflush(stdout);

    struct ev_loop *loop = EV_DEFAULT;
    ev_io lio;
    ev_signal sterm, sint;
    ev_io_init(&lio, accept_cb, lfd, EV_READ);
    ev_io_start(loop, &lio);
    ev_signal_init(&sterm, stop_cb, SIGTERM);
    ev_signal_init(&sint, stop_cb, SIGINT);
    ev_signal_start(loop, &sterm);
    ev_signal_start(loop, &sint);
    ev_run(loop, 0);
    close(lfd);
    return 0;
}
