// SPDX-License-Identifier: MIT
//
// conn.c -- one rawrpc connection; see conn.h.
//
// Per wake-up: read in large chunks and decode every complete frame; what
// the frames produced goes out in one send per connection from the loop's
// flush list once the round of callbacks under way is done (scratch.h).  The
// timer is lazy (libev's "be smart about timeouts"): activity only stamps
// last_rx, and the timer works out what is due when it fires.

#include "util/container.h"
#include "transport/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/byteorder.h"
#include "util/log.h"
#include "rawrpc/rawrpc.h"
#include "codec/utf8.h"

#define READ_CHUNK        ((size_t) 64 * 1024)
#define READS_PER_WAKEUP  2    // then let other connections have the loop
#define PING_FLOOD_COUNT  100  // PINGs a peer may send per window ...
#define PING_FLOOD_WINDOW 10.0 // ... of this many seconds (PROTOCOL.md 8)
// Buffers up to this size stay between wake-ups while traffic flows:
// freeing and regrowing them past glibc's 128 KiB mmap threshold cost an
// mmap, an munmap and fresh page faults per wake-up (docs/PERFORMANCE.md).
#define KEEP_BUF  ((size_t) 2 * 1024 * 1024)
#define OUT_SLACK ((size_t) 64 * 1024)

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static int conn_flush(rr_conn *c);

// Output may hold the high-water mark plus one largest frame the peer
// accepts, so a frame that fits the protocol always fits the buffer.
static size_t
conn_out_cap(const rr_conn *c)
{
    size_t high = c->cfg.out_high ? c->cfg.out_high : (size_t) 64 * 1024 * 1024;
    return high + RR_FRAME_HEADER_SIZE + (size_t) c->peer.max_frame_size +
           OUT_SLACK;
}

static void
conn_enter(rr_conn *c)
{
    c->busy++;
}

// Frees a closed connection once the outermost callback unwinds.
static void
conn_leave(rr_conn *c)
{
    if (--c->busy == 0 && c->state == RR_CONN_CLOSED)
        c->ops->on_free(c);
}

static void
conn_sockopts(rr_conn *c)
{
    int one = 1;

    // The fd came from accept4 or socket with SOCK_NONBLOCK | SOCK_CLOEXEC.
    // These fail harmlessly on Unix-domain sockets.
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->cfg.hb_interval > 0) {
        // Unacknowledged writes to a vanished peer fail as fast as
        // silence does (gRFC A18).
        unsigned ms = (unsigned) (c->cfg.hb_timeout * 1000);
        setsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
    }
    if (c->cfg.keepalive) {
        int idle = c->cfg.hb_interval > 1 ? (int) c->cfg.hb_interval : 1;
        int intvl = idle / 3 > 0 ? idle / 3 : 1, cnt = 3;
        setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
}

void
rr__conn_start(rr_conn *c, struct ev_loop *loop, int fd, bool is_client,
               bool connecting, const rr_conn_cfg *cfg, const rr_conn_ops *ops,
               const char *peer_name)
{
    c->loop = loop;
    c->ops = ops;
    c->cfg = *cfg;
    c->fd = fd;
    rr__io_plain(&c->plain, fd);
    c->io = &c->plain;
    c->hup_fd = -1;
    c->is_client = is_client;
    c->state = connecting ? RR_CONN_CONNECTING : RR_CONN_HANDSHAKE;
    c->preface_rx = false;
    c->paused = false;
    c->finish_wanted = false;
    c->peer_eof = false;
    c->tx_stuck = false;
    c->tx_bytes = 0;
    c->tx_seen = 0;
    c->busy = 0;
    c->goaway_last = 0;
    c->flush_next = NULL;
    c->flush_pprev = NULL;
    rr__settings_init(&c->peer);
    c->last_rx = ev_now(loop);
    c->ping_at = 0;
    c->pings_since = c->last_rx;
    c->pings = 0;
    // The input buffer holds one partial frame, plus what a scratch read
    // brought when a pause stopped decoding: that bounds what a peer can
    // make us hold.
    rr__buf_init(&c->in, RR_FRAME_HEADER_SIZE +
                             (size_t) cfg->local.max_frame_size +
                             RR_SCRATCH_SIZE);
    rr__buf_init(&c->out, conn_out_cap(c));
    snprintf(c->peer_name, sizeof(c->peer_name), "%s", peer_name);
    conn_sockopts(c);

    ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
    ev_timer_init(&c->timer, conn_timer_cb, cfg->handshake_timeout, 0.);
    ev_timer_start(loop, &c->timer);

    // Both sides send their preface and SETTINGS at once (section 2).
    if (rr__preface_put(&c->out, RAWRPC_PROTOCOL_VERSION) != RR_OK ||
        rr__settings_put(&c->out, &cfg->local) != RR_OK) {
        rr__conn_close(c, RR_ENOMEM, "out of memory for the preface");
        return;
    }
    if (connecting) {
        ev_io_start(loop, &c->wio); // sees the connect complete
        return;
    }
    ev_io_start(loop, &c->rio);
    // A connected socket takes the preface now, not a wake-up later: for
    // a short-lived connection that wake-up and the epoll_ctl calls
    // around it were a tenth of the server's system calls.
    conn_enter(c);
    conn_flush(c);
    conn_leave(c);
}

void
rr__conn_hold(rr_conn *c)
{
    conn_enter(c);
}

void
rr__conn_release(rr_conn *c)
{
    conn_leave(c);
}

// ------------------------------------------------------------ flush list

static void conn_flush_all_cb(struct ev_loop *loop, ev_prepare *w, int revents);

// Puts c on its loop's flush list (scratch.h): written once, after the
// callbacks now pending.  The list's watcher is fed, not started: a fed
// watcher of the lowest priority runs in the loop's current round of
// callbacks, whichever it is and however nested (or at the start of the
// next ev_run, when this runs outside the loop), so nothing queued can
// wait for a poll.  A connection without the shared buffer (no owner's
// scratch) waits for its write watcher instead.
static void
conn_enlist(rr_conn *c)
{
    rr_scratch *s = c->cfg.scratch;

    if (s == NULL) {
        ev_io_start(c->loop, &c->wio);
        return;
    }
    if (s->flush_head == NULL) { // not fed: conn_unlist clears a feed
        ev_set_cb(&s->flush, conn_flush_all_cb);
        ev_feed_event(c->loop, &s->flush, EV_CUSTOM);
    }
    c->flush_next = s->flush_head;
    if (s->flush_head != NULL)
        s->flush_head->flush_pprev = &c->flush_next;
    s->flush_head = c;
    c->flush_pprev = &s->flush_head;
}

static void
conn_unlist(rr_conn *c)
{
    if (c->flush_pprev == NULL)
        return;
    *c->flush_pprev = c->flush_next;
    if (c->flush_next != NULL)
        c->flush_next->flush_pprev = c->flush_pprev;
    c->flush_next = NULL;
    c->flush_pprev = NULL;
    rr_scratch *s = c->cfg.scratch;
    if (s->flush_head == NULL) // nothing to write: the feed is void
        ev_clear_pending(c->loop, &s->flush);
}

// Whether the output is under the high-water mark.
static bool
conn_write_space(const rr_conn *c)
{
    return c->cfg.out_high == 0 || rr__buf_size(&c->out) < c->cfg.out_high;
}

void
rr__conn_queued_slow(rr_conn *c)
{
    if (c->state == RR_CONN_CLOSED || c->state == RR_CONN_CONNECTING)
        return;
    if (rr__buf_size(&c->out) > 0 && !ev_is_active(&c->wio) &&
        c->flush_pprev == NULL)
        conn_enlist(c);
    if (!conn_write_space(c) && !c->paused && !c->peer_eof) {
        c->paused = true; // the peer is not reading: stop taking requests
        ev_io_stop(c->loop, &c->rio);
    }
}

void
rr__conn_close(rr_conn *c, int err, const char *why)
{
    if (c->state == RR_CONN_CLOSED)
        return;
    c->state = RR_CONN_CLOSED;
    conn_unlist(c);
    ev_io_stop(c->loop, &c->rio);
    ev_io_stop(c->loop, &c->wio);
    ev_timer_stop(c->loop, &c->timer);
    c->io->ops->close(c->io);
    c->fd = -1;
    if (c->hup_fd >= 0)
        close(c->hup_fd);
    c->hup_fd = -1;
    rr__buf_fini(&c->in);
    rr__buf_fini(&c->out);
    conn_enter(c); // on_close may close again or free owner state
    c->ops->on_close(c, err, why);
    conn_leave(c);
}

// The graceful end: no more output; read until the peer's EOF, but not
// for longer than a handshake may take.
static void
conn_shut_write(rr_conn *c)
{
    c->state = RR_CONN_FINISHING;
    c->io->ops->shutdown(c->io);
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_set(&c->timer, c->cfg.handshake_timeout, 0.);
    ev_timer_start(c->loop, &c->timer);
}

// The one place a graceful end begins: once it was asked for, the
// connection is open and every queued byte is written.  A peer that
// already sent its EOF has nothing more to say: close at once.
static void
conn_shut_if_done(rr_conn *c)
{
    if (!c->finish_wanted || c->state != RR_CONN_OPEN ||
        rr__buf_size(&c->out) != 0)
        return;
    if (c->peer_eof)
        rr__conn_close(c, RR_OK, "closed after the peer's EOF");
    else
        conn_shut_write(c);
}

// Writes what is queued, until done or the socket is full; the write
// watcher is on exactly while bytes remain.  Returns RR_OK, or an error
// after closing the connection.
static int
conn_flush(rr_conn *c)
{
    conn_unlist(c); // whatever is left waits for the write watcher
    while (rr__buf_size(&c->out) > 0) {
        ssize_t n = c->io->ops->send(c->io, rr__buf_data(&c->out),
                                     rr__buf_size(&c->out));
        if (n > 0) {
            rr__buf_consume(&c->out, (size_t) n);
            c->tx_bytes += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        char why[128];
        snprintf(why, sizeof(why), "write to %s failed: %s", c->peer_name,
                 strerror(errno));
        rr__conn_close(c, RR_ECLOSED, why);
        return RR_ECLOSED;
    }
    if (rr__buf_size(&c->out) > 0) {
        if (!ev_is_active(&c->wio))
            ev_io_start(c->loop, &c->wio); // for the rest
        return RR_OK;
    }
    ev_io_stop(c->loop, &c->wio);
    if (c->out.cap > KEEP_BUF)
        rr__buf_release(&c->out); // a burst must not pin its memory
    conn_shut_if_done(c);
    return RR_OK;
}

// Resumes a reader paused by the high-water mark once output drains.
static void
conn_after_write(rr_conn *c)
{
    if (c->state == RR_CONN_CLOSED)
        return;
    if (c->paused && rr__buf_size(&c->out) <= c->cfg.out_low) {
        c->paused = false;
        if (!c->peer_eof) { // else nothing more to read
            ev_io_start(c->loop, &c->rio);
            ev_feed_event(c->loop, &c->rio, EV_READ); // frames may wait
        }
    }
    // Output that all went at once leaves no write watcher to wake the
    // loop again (the flush list writes what the socket takes), so an
    // owner waiting for room hears it here; while bytes remain, the write
    // watcher's wake-ups serve (a drain per write cost 12 % at 64 KiB).
    if (c->ops->on_written != NULL && rr__buf_size(&c->out) == 0)
        c->ops->on_written(c);
}

void
rr__conn_fail(rr_conn *c, uint32_t code, int err, const char *fmt, ...)
{
    char raw[512], why[256];
    va_list ap;

    if (c->state == RR_CONN_CLOSED)
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    // The GOAWAY message is UTF-8 (PROTOCOL.md 9), even where it quotes
    // bytes the peer sent.
    rr__utf8_escape(why, sizeof(why), (const uint8_t *) raw, strlen(raw),
                    false);
    rr__log(RR_LOG_WARN, "%s: closing: %s (%s)", c->peer_name, why,
            rr__goaway_code_name(code));
    // The flush may meet a reset and close c itself; from outside every
    // callback of c (a handler replying from a timer) that would free it
    // under our feet.
    conn_enter(c);
    if (c->state != RR_CONN_CONNECTING &&
        rr__frame_put_goaway(&c->out, c->goaway_last, code, why) == RR_OK)
        conn_flush(c); // best effort: the peer learns why
    rr__conn_close(c, err, why);
    conn_leave(c);
}

void
rr__conn_finish(rr_conn *c)
{
    if (c->state != RR_CONN_OPEN && c->state != RR_CONN_HANDSHAKE)
        return;
    c->finish_wanted = true;
    conn_enter(c); // the close it may cause frees c only on our way out
    conn_shut_if_done(c);
    conn_leave(c);
}

static void
conn_open(rr_conn *c)
{
    c->state = RR_CONN_OPEN;
    c->out.max = conn_out_cap(c); // the peer's MAX_FRAME_SIZE is known now
    ev_timer_stop(c->loop, &c->timer);
    if (c->cfg.hb_interval > 0) {
        c->timer.repeat = c->cfg.hb_interval;
        ev_timer_again(c->loop, &c->timer);
    }
    c->ops->on_open(c);
    conn_shut_if_done(c);
}

// The peer's preface.  Returns bytes used, 0 for more, or -1 if closed.
static ssize_t
conn_preface(rr_conn *c, const uint8_t *p, size_t len)
{
    uint16_t version;
    ssize_t n = rr__preface_decode(p, len, &version);

    if (n >= 0) {
        c->preface_rx = n > 0;
        return n;
    }
    char msg[160];
    rr__preface_describe(p, len, msg, sizeof(msg));
    rr__conn_fail(c,
                  n == RR_EVERSION ? RR_GOAWAY_UNSUPPORTED_VERSION
                                   : RR_GOAWAY_BAD_PREFACE,
                  (int) n, "%s", msg);
    return -1;
}

// One decoded frame.  Returns RR_OK, or an error after closing.
static int
conn_frame(rr_conn *c, const rr_frame *f)
{
    if (c->state == RR_CONN_HANDSHAKE) {
        char msg[128];
        if (f->type != RR_FRAME_SETTINGS) {
            rr__conn_fail(c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                          "expected SETTINGS as the first frame, got %s",
                          rr__frame_type_name(f->type));
            return RR_EPROTO;
        }
        if (rr__settings_decode(f, &c->peer, msg, sizeof(msg)) != RR_OK) {
            rr__conn_fail(c, RR_GOAWAY_SETTINGS_ERROR, RR_EPROTO, "%s", msg);
            return RR_EPROTO;
        }
        conn_open(c);
        return RR_OK;
    }
    switch (f->type) {
    case RR_FRAME_SETTINGS:
        rr__conn_fail(c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "a second SETTINGS frame");
        return RR_EPROTO;
    case RR_FRAME_PING:
        if (c->last_rx - c->pings_since >= PING_FLOOD_WINDOW) {
            c->pings_since = c->last_rx;
            c->pings = 0;
        }
        if (++c->pings > PING_FLOOD_COUNT) {
            rr__conn_fail(c, RR_GOAWAY_ENHANCE_YOUR_CALM, RR_EPROTO,
                          "more than %d PINGs within %.0f s", PING_FLOOD_COUNT,
                          PING_FLOOD_WINDOW);
            return RR_EPROTO;
        }
        if (rr__frame_put_ping(&c->out, RR_FRAME_PONG, f->body) != RR_OK) {
            rr__conn_fail(c, RR_GOAWAY_INTERNAL_ERROR, RR_ENOBUFS,
                          "no room to answer a PING");
            return RR_ENOBUFS;
        }
        rr__conn_queued(c);
        return RR_OK;
    case RR_FRAME_PONG:
        return RR_OK; // any bytes prove liveness; last_rx is already set
    default:
        if (f->type >= RR_FRAME_EXT_MIN)
            return RR_OK; // extensions we do not know are skipped
        c->ops->on_frame(c, f);
        return c->state == RR_CONN_CLOSED ? RR_ECLOSED : RR_OK;
    }
}

// Decodes and handles the complete frames in p[0, len).  Returns the
// bytes used; it stops at a partial frame, a pause or a close.
static size_t
conn_decode(rr_conn *c, const uint8_t *p, size_t len)
{
    size_t used = 0;

    while (c->state != RR_CONN_CLOSED && !c->paused) {
        ssize_t n;

        if (!c->preface_rx) {
            n = conn_preface(c, p + used, len - used);
            if (n <= 0)
                break;
            used += (size_t) n;
            continue;
        }
        rr_frame f;
        n = rr__frame_decode(p + used, len - used, c->cfg.local.max_frame_size,
                             &f);
        if (n == 0)
            break;
        if (n < 0) {
            char msg[128];
            rr__frame_check(&f, c->cfg.local.max_frame_size, msg, sizeof(msg));
            rr__conn_fail(c,
                          n == RR_EMSGSIZE ? RR_GOAWAY_FRAME_TOO_LARGE
                                           : RR_GOAWAY_PROTOCOL_ERROR,
                          (int) n, "%s", msg);
            break;
        }
        // While finishing, frames are read only to find the EOF.
        if (c->state != RR_CONN_FINISHING && conn_frame(c, &f) != RR_OK)
            break;
        used += (size_t) n;
    }
    return used;
}

// Handles the complete frames held in the connection's own buffer.
static void
conn_process(rr_conn *c)
{
    size_t n = conn_decode(c, rr__buf_data(&c->in), rr__buf_size(&c->in));

    if (c->state != RR_CONN_CLOSED)
        rr__buf_consume(&c->in, n);
}

// Bytes still missing from the preface or frame that starts the input
// buffer; 0 when what is there already decides it.
static size_t
conn_need(const rr_conn *c)
{
    size_t have = rr__buf_size(&c->in);
    size_t want = RR_FRAME_HEADER_SIZE; // as long as the preface, too

    if (c->preface_rx && have >= RR_FRAME_HEADER_SIZE) {
        uint32_t body = rr__get_be32(rr__buf_data(&c->in));
        if (body > c->cfg.local.max_frame_size)
            return 0; // conn_decode reports it
        want += body;
    }
    return want > have ? want - have : 0;
}

static void
conn_hup_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_conn *c = RR_CONTAINER_OF(w, rr_conn, rio);
    char why[128];

    conn_enter(c);
    snprintf(why, sizeof(why), "%s reset the connection after its EOF",
             c->peer_name);
    rr__conn_close(c, RR_ECLOSED, why);
    conn_leave(c);
}

// An EOF looks the same whether the peer only shut its write side or
// closed the socket (or died).  A closed peer answers the next segment
// with a reset, which must end its calls at once; but the socket stays
// readable (at EOF) for good, so the read watcher would spin.  An epoll
// set holding the socket with no events wakes only on an error or a
// hang-up; the read watcher watches that instead.  Without a descriptor
// to spare, the reset is found by the next write.
static void
conn_watch_hangup(rr_conn *c)
{
    struct epoll_event ev = {.events = 0};
    int fd = epoll_create1(EPOLL_CLOEXEC);

    if (fd < 0)
        return;
    if (epoll_ctl(fd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(fd);
        return;
    }
    c->hup_fd = fd;
    ev_io_init(&c->rio, conn_hup_cb, fd, EV_READ);
    ev_io_start(c->loop, &c->rio);
}

// The peer half-closed an open connection whose owner takes that (a
// server: the client may still read its RESPONSEs).  No more reading,
// and no more PINGs, which the peer could not answer; the timer only
// watches that output keeps moving.
static void
conn_half_closed(rr_conn *c)
{
    c->peer_eof = true;
    ev_io_stop(c->loop, &c->rio);
    conn_watch_hangup(c);
    ev_timer_stop(c->loop, &c->timer);
    if (c->cfg.hb_interval > 0) {
        c->tx_seen = c->tx_bytes;
        c->timer.repeat = c->cfg.hb_timeout;
        ev_timer_again(c->loop, &c->timer);
    }
    c->ops->on_eof(c);
}

static void
conn_eof(rr_conn *c)
{
    if (c->state == RR_CONN_FINISHING) {
        rr__conn_close(c, RR_OK, "closed after graceful shutdown");
        return;
    }
    if (c->state == RR_CONN_OPEN && c->ops->on_eof != NULL) {
        conn_half_closed(c);
        return;
    }
    char why[128];
    snprintf(why, sizeof(why), "%s closed the connection", c->peer_name);
    rr__conn_close(c, RR_ECLOSED, why);
}

// One recv.  Returns the bytes read, or 0 when there is nothing more for
// now: the socket is drained, or the peer's EOF or an error closed c.
static size_t
conn_recv(rr_conn *c, uint8_t *p, size_t want)
{
    for (;;) {
        ssize_t n = c->io->ops->recv(c->io, p, want);
        if (n > 0) {
            c->last_rx = ev_now(c->loop);
            return (size_t) n;
        }
        if (n == 0) {
            conn_eof(c);
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            char why[128];
            snprintf(why, sizeof(why), "read from %s failed: %s", c->peer_name,
                     strerror(errno));
            rr__conn_close(c, RR_ECLOSED, why);
        }
        return 0;
    }
}

// Reads into the connection's own buffer: when no scratch buffer is free,
// or straight into a large frame's missing part (need), which saves
// copying it.  Returns whether the socket may hold more.
static bool
conn_read_own(rr_conn *c, size_t need)
{
    size_t room = c->in.max - rr__buf_size(&c->in);
    size_t want = need > READ_CHUNK ? need : READ_CHUNK;
    uint8_t *p;

    if (want > room)
        want = room;
    // A full buffer holds a complete largest frame, which conn_process
    // consumes; so room is only 0 while reading is paused.
    if (want == 0)
        return false;
    if (rr__buf_reserve(&c->in, want, &p) != RR_OK) {
        // Not reading would leave the socket readable: the loop would spin
        // for as long as memory is short, and the frame never arrive.
        rr__conn_fail(c, RR_GOAWAY_INTERNAL_ERROR, RR_ENOMEM,
                      "out of memory for a frame");
        return false;
    }
    size_t n = conn_recv(c, p, want);
    if (n == 0)
        return false;
    rr__buf_commit(&c->in, n);
    conn_process(c);
    return n == want;
}

// Completes the partial preface or frame left in the input buffer by an
// earlier read with the first bytes of p.  Returns the bytes taken.
static size_t
conn_complete(rr_conn *c, const uint8_t *p, size_t len)
{
    size_t used = 0;

    while (rr__buf_size(&c->in) > 0 && used < len &&
           c->state != RR_CONN_CLOSED && !c->paused) {
        size_t need = conn_need(c), before = rr__buf_size(&c->in);
        size_t take = need < len - used ? need : len - used;
        if (rr__buf_append(&c->in, p + used, take) != RR_OK) {
            rr__conn_fail(c, RR_GOAWAY_INTERNAL_ERROR, RR_ENOMEM,
                          "out of memory for a partial frame");
            break;
        }
        used += take;
        conn_process(c);
        if (take == 0 && c->state != RR_CONN_CLOSED &&
            rr__buf_size(&c->in) == before)
            break; // cannot happen: a decided unit is consumed or fails
    }
    return used;
}

// Reads into the owner's scratch buffer and decodes the frames there in
// place; only a partial frame at the end (or what a pause left) is
// copied into the connection's buffer.  Returns whether the socket may
// hold more.
static bool
conn_read_scratch(rr_conn *c, rr_scratch *s)
{
    s->busy = true; // a handler that runs a nested loop reads elsewhere
    atomic_fetch_add(&s->refs, 1);
    size_t n = conn_recv(c, s->data, RR_SCRATCH_SIZE);
    size_t used = conn_complete(c, s->data, n);

    if (c->state != RR_CONN_CLOSED && rr__buf_size(&c->in) == 0)
        used += conn_decode(c, s->data + used, n - used);
    if (c->state != RR_CONN_CLOSED && used < n &&
        rr__buf_append(&c->in, s->data + used, n - used) != RR_OK)
        rr__conn_fail(c, RR_GOAWAY_INTERNAL_ERROR, RR_ENOMEM,
                      "out of memory for a partial frame");
    s->busy = false;
    rr__scratch_unref(s);
    return n == RR_SCRATCH_SIZE;
}

// Whether the owner's scratch buffer can take this read.
static rr_scratch *
conn_scratch(rr_conn *c, size_t need)
{
    rr_scratch *s = c->cfg.scratch;

    return s == NULL || s->busy || need > READ_CHUNK ? NULL : s;
}

static void
conn_read(rr_conn *c)
{
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        if (c->state == RR_CONN_CLOSED || c->paused)
            return;
        size_t need = rr__buf_size(&c->in) > 0 ? conn_need(c) : 0;
        rr_scratch *s = conn_scratch(c, need);
        if (!(s != NULL ? conn_read_scratch(c, s) : conn_read_own(c, need)))
            return; // the socket is drained, or c closed
    }
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_conn *c = RR_CONTAINER_OF(w, rr_conn, rio);

    conn_enter(c);
    if (rr__buf_size(&c->in) > 0)
        conn_process(c); // frames left buffered while reading was paused
    if (c->state != RR_CONN_CLOSED && !c->paused)
        conn_read(c);
    if (c->state != RR_CONN_CLOSED && rr__buf_size(&c->in) == 0 &&
        c->in.cap > KEEP_BUF)
        rr__buf_release(&c->in);
    // What this wake-up produced waits on the loop's flush list, with
    // every other connection's, for the end of this round of callbacks.
    conn_leave(c);
}

static void
conn_connected(rr_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        char why[128];
        snprintf(why, sizeof(why), "connect to %s failed: %s", c->peer_name,
                 strerror(err));
        rr__conn_close(c, RR_ECLOSED, why);
        return;
    }
    c->state = RR_CONN_HANDSHAKE;
    ev_io_start(c->loop, &c->rio);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_conn *c = RR_CONTAINER_OF(w, rr_conn, wio);

    conn_enter(c);
    if (c->state == RR_CONN_CONNECTING)
        conn_connected(c);
    if (c->state != RR_CONN_CLOSED && conn_flush(c) == RR_OK)
        conn_after_write(c);
    conn_leave(c);
}

// The loop's flush list, fed by the first connection put on it: one
// write for everything each listed connection queued.  Each is taken off the
// list before its write, which may close it and so run owner code that
// closes others (they leave the list) or drops the owner's reference to
// the shared buffer: a reference is held meanwhile.
static void
conn_flush_all_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_scratch *s = RR_CONTAINER_OF(w, rr_scratch, flush);
    rr_conn *c;

    if (s->flush_head == NULL)
        return;
    atomic_fetch_add(&s->refs, 1);
    while ((c = s->flush_head) != NULL) {
        conn_enter(c);
        if (conn_flush(c) == RR_OK)
            conn_after_write(c);
        conn_leave(c);
    }
    rr__scratch_unref(s);
}

// The heartbeat: PING after hb_interval of silence; dead when a PING got
// no answer (nor anything else) within hb_timeout.  Small buffers are kept
// between calls, so steady traffic allocates nothing; a connection found
// silent here gives them back, so idle connections hold no buffers.
static void
conn_heartbeat(rr_conn *c)
{
    ev_tstamp now = ev_now(c->loop);

    if (now - c->last_rx >= c->cfg.hb_interval) {
        rr__buf_release(&c->in);
        rr__buf_release(&c->out);
    }

    if (c->ping_at > c->last_rx) {
        ev_tstamp left = c->ping_at + c->cfg.hb_timeout - now;
        if (left <= 0) {
            rr__conn_fail(c, RR_GOAWAY_HEARTBEAT_TIMEOUT, RR_ETIMEDOUT,
                          "no answer from %s for %.3f s after a PING",
                          c->peer_name, c->cfg.hb_timeout);
            return;
        }
        c->timer.repeat = left;
    } else {
        ev_tstamp left = c->last_rx + c->cfg.hb_interval - now;
        if (left <= 0) {
            uint8_t data[RR_PING_SIZE];
            memcpy(data, &now, sizeof(data)); // opaque: any 8 bytes do
            if (rr__frame_put_ping(&c->out, RR_FRAME_PING, data) == RR_OK) {
                c->ping_at = now;
                rr__conn_queued(c);
            }
            // Look again after the interval, not only at the timeout: an
            // answer restarts the interval, so the next PING is due one
            // interval after it (PROTOCOL.md section 8).
            left = c->cfg.hb_interval < c->cfg.hb_timeout ? c->cfg.hb_interval
                                                          : c->cfg.hb_timeout;
        }
        c->timer.repeat = left;
    }
    ev_timer_again(c->loop, &c->timer);
}

// After the peer's EOF: a peer that stopped reading as well would hold
// the connection for ever, so output that did not move for a whole tick
// of the heartbeat timeout closes it.
static void
conn_watch_output(rr_conn *c)
{
    bool waiting = rr__buf_size(&c->out) > 0 && c->tx_bytes == c->tx_seen;

    if (waiting && c->tx_stuck) {
        char why[128];
        snprintf(why, sizeof(why), "%s half-closed and read nothing for %.3f s",
                 c->peer_name, c->cfg.hb_timeout);
        rr__conn_close(c, RR_ETIMEDOUT, why);
        return;
    }
    c->tx_stuck = waiting;
    c->tx_seen = c->tx_bytes;
    c->timer.repeat = c->cfg.hb_timeout;
    ev_timer_again(c->loop, &c->timer);
}

static void
conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_conn *c = RR_CONTAINER_OF(w, rr_conn, timer);

    conn_enter(c);
    if (c->state == RR_CONN_CONNECTING || c->state == RR_CONN_HANDSHAKE) {
        rr__conn_fail(c, RR_GOAWAY_HANDSHAKE_TIMEOUT, RR_ETIMEDOUT,
                      "%s did not complete the %s within %.3f s", c->peer_name,
                      c->state == RR_CONN_CONNECTING ? "connect" : "handshake",
                      c->cfg.handshake_timeout);
    } else if (c->state == RR_CONN_FINISHING) {
        char why[128];
        snprintf(why, sizeof(why), "%s did not close within %.3f s",
                 c->peer_name, c->cfg.handshake_timeout);
        rr__conn_close(c, RR_ETIMEDOUT, why);
    } else if (c->state == RR_CONN_OPEN && c->peer_eof) {
        conn_watch_output(c);
    } else if (c->state == RR_CONN_OPEN && c->cfg.hb_interval > 0) {
        conn_heartbeat(c);
    }
    conn_leave(c);
}
