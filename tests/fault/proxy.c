// SPDX-License-Identifier: MIT
//
// proxy.c -- the fault-injecting TCP proxy; see proxy.h.

#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIECE_GAP 0.0002 // seconds between 1-byte writes

typedef struct chunk {
    struct chunk *next;
    double due;
    size_t len, off;
    uint8_t data[];
} chunk;

typedef struct pconn pconn;

// One direction of a relayed connection.
typedef struct dir {
    pconn *pc;
    int from, to;
    ev_io rio, wio;
    ev_timer timer;
    chunk *head, *tail;
    bool eof; // from has closed; shut to's write side once drained
} dir;

struct pconn {
    proxy *p;
    dir d[2]; // client to server, server to client
    pconn *next, **pprev;
};

struct proxy {
    struct ev_loop *loop;
    int lfd;
    uint16_t port, upstream;
    ev_io accept_io;
    proxy_mode mode;
    double delay;
    pconn *conns;
    int n;
};

static void
pconn_free(pconn *pc, bool reset)
{
    proxy *p = pc->p;

    for (int i = 0; i < 2; i++) {
        dir *d = &pc->d[i];
        ev_io_stop(p->loop, &d->rio);
        ev_io_stop(p->loop, &d->wio);
        ev_timer_stop(p->loop, &d->timer);
        while (d->head != NULL) {
            chunk *c = d->head;
            d->head = c->next;
            free(c);
        }
        if (reset) {
            struct linger lg = {1, 0};
            setsockopt(d->from, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
    }
    close(pc->d[0].from);
    close(pc->d[1].from);
    *pc->pprev = pc->next;
    if (pc->next != NULL)
        pc->next->pprev = pc->pprev;
    p->n--;
    free(pc);
}

// Both directions ended and drained: the relay is over.
static bool
pconn_done(pconn *pc)
{
    return pc->d[0].eof && pc->d[0].head == NULL && pc->d[1].eof &&
           pc->d[1].head == NULL;
}

// Writes what is due, by the current mode.  Returns false if pc was freed.
static bool
dir_pump(dir *d)
{
    pconn *pc = d->pc;
    proxy *p = pc->p;

    ev_timer_stop(p->loop, &d->timer);
    while (d->head != NULL && p->mode != PROXY_STALL) {
        chunk *c = d->head;
        double now = ev_now(p->loop);
        if (c->due > now) {
            ev_timer_set(&d->timer, c->due - now, 0.);
            ev_timer_start(p->loop, &d->timer);
            return true;
        }
        size_t want = p->mode == PROXY_PIECES ? 1 : c->len - c->off;
        ssize_t n = send(d->to, c->data + c->off, want, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            ev_io_start(p->loop, &d->wio);
            return true;
        }
        if (n < 0) {
            pconn_free(pc, true);
            return false;
        }
        c->off += (size_t) n;
        if (c->off == c->len) {
            d->head = c->next;
            if (d->head == NULL)
                d->tail = NULL;
            free(c);
        } else if (p->mode == PROXY_PIECES) {
            c->due = now + PIECE_GAP; // so the peer reads the bytes apart
        }
    }
    ev_io_stop(p->loop, &d->wio);
    if (d->eof && d->head == NULL) {
        shutdown(d->to, SHUT_WR);
        if (pconn_done(pc)) {
            pconn_free(pc, false);
            return false;
        }
    }
    return true;
}

static void
dir_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    dir *d = w->data;
    proxy *p = d->pc->p;
    uint8_t buf[65536];
    ssize_t n = recv(d->from, buf, sizeof(buf), 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) { // reset by the peer: pass the reset on
        pconn_free(d->pc, true);
        return;
    }
    if (n == 0) {
        ev_io_stop(loop, w);
        if (p->mode == PROXY_BLACKHOLE)
            return; // a dead network carries no FIN either
        d->eof = true;
        dir_pump(d);
        return;
    }
    if (p->mode == PROXY_BLACKHOLE)
        return; // the network ate it
    chunk *c = malloc(sizeof(*c) + (size_t) n);
    if (c == NULL)
        abort();
    memcpy(c->data, buf, (size_t) n);
    c->len = (size_t) n;
    c->off = 0;
    c->next = NULL;
    c->due = ev_now(loop) +
             (p->mode == PROXY_DELAY || p->mode == PROXY_PIECES ? p->delay : 0);
    if (d->tail != NULL)
        d->tail->next = c;
    else
        d->head = c;
    d->tail = c;
    if (d->head == c)
        dir_pump(d);
}

static void
dir_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    dir_pump(w->data);
}

static void
dir_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    dir_pump(w->data);
}

static void
dir_init(proxy *p, pconn *pc, dir *d, int from, int to)
{
    d->pc = pc;
    d->from = from;
    d->to = to;
    ev_io_init(&d->rio, dir_read_cb, from, EV_READ);
    ev_io_init(&d->wio, dir_write_cb, to, EV_WRITE);
    ev_timer_init(&d->timer, dir_timer_cb, 0., 0.);
    d->rio.data = d->wio.data = d->timer.data = d;
    ev_io_start(p->loop, &d->rio);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    proxy *p = w->data;
    int down = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(p->upstream)};
    int one = 1;

    if (down < 0)
        return;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (up < 0 || connect(up, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        if (up >= 0)
            close(up);
        close(down); // upstream is gone: so is this connection
        return;
    }
    fcntl(up, F_SETFL, fcntl(up, F_GETFL) | O_NONBLOCK);
    setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(down, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pconn *pc = calloc(1, sizeof(*pc));
    if (pc == NULL)
        abort();
    pc->p = p;
    dir_init(p, pc, &pc->d[0], down, up);
    dir_init(p, pc, &pc->d[1], up, down);
    pc->next = p->conns;
    if (pc->next != NULL)
        pc->next->pprev = &pc->next;
    p->conns = pc;
    pc->pprev = &p->conns;
    p->n++;
}

proxy *
proxy_new(struct ev_loop *loop, uint16_t upstream_port)
{
    proxy *p = calloc(1, sizeof(*p));
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);

    if (p == NULL)
        return NULL;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->loop = loop;
    p->upstream = upstream_port;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *) &sin, sizeof(sin)) ||
        listen(p->lfd, 1024) ||
        getsockname(p->lfd, (struct sockaddr *) &sin, &len)) {
        if (p->lfd >= 0)
            close(p->lfd);
        free(p);
        return NULL;
    }
    p->port = ntohs(sin.sin_port);
    ev_io_init(&p->accept_io, accept_cb, p->lfd, EV_READ);
    p->accept_io.data = p;
    ev_io_start(loop, &p->accept_io);
    return p;
}

uint16_t
proxy_port(const proxy *p)
{
    return p->port;
}

void
proxy_set(proxy *p, proxy_mode mode, double delay)
{
    pconn *next;

    p->mode = mode;
    p->delay = delay;
    for (pconn *pc = p->conns; pc != NULL; pc = next) {
        next = pc->next;
        if (dir_pump(&pc->d[0]))
            dir_pump(&pc->d[1]); // held bytes go now, or later if delayed
    }
}

void
proxy_reset(proxy *p)
{
    for (pconn *pc = p->conns, *next; pc != NULL; pc = next) {
        next = pc->next;
        pconn_free(pc, true);
    }
}

int
proxy_conns(const proxy *p)
{
    return p->n;
}

void
proxy_free(proxy *p)
{
    if (p == NULL)
        return;
    for (pconn *pc = p->conns, *next; pc != NULL; pc = next) {
        next = pc->next;
        pconn_free(pc, false);
    }
    ev_io_stop(p->loop, &p->accept_io);
    close(p->lfd);
    free(p);
}
