// SPDX-License-Identifier: MIT
//
// server.c -- rr_server: listen and accept (pausing when out of
// descriptors), hand connections to the loops, shut down, free.  The
// calls live in call.c, the connections in sconn.c, the method table in
// methods.c and the extra loops in loops.c.

#include "server/server.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rawrpc/stub.h"
#include "transport/addr.h"
#include "util/container.h"
#include "util/log.h"
#include "util/opts.h"

#define ACCEPTS_PER_WAKEUP 64
#define LINGER_AFTER_GRACE 2.0 // seconds to wait for peers' EOF
// Seconds a listener sleeps when accept finds no descriptor (or memory).
#define ACCEPT_PAUSE 0.1

static void srv_loops_done(void *arg);

// --------------------------------------------------------------- methods

// With extra loops, methods are registered before the first listen,
// which freezes the table that every loop then shares without a lock;
// one loop alone may take more at any time (the test kit's order).
static int
srv_add(rr_server *srv, const ProtobufCServiceDescriptor *svc,
        const rr__method *hows)
{
    if (rr__methods_frozen(srv->methods)) {
        rr__set_last_error("a server with more than one loop takes its "
                           "services before the first rr_server_listen: %s "
                           "comes after it",
                           svc->name);
        rr__log(RR_LOG_ERROR, "%s", rr_last_error());
        return RR_EINVAL;
    }
    for (unsigned i = 0; i < svc->n_methods; i++) {
        int rv = rr__methods_add(srv->methods, svc, i, &hows[i]);
        if (rv != RR_OK)
            return rv;
    }
    return RR_OK;
}

int
rr_server_add_service(rr_server *srv, const ProtobufCServiceDescriptor *svc,
                      const rr_handler_cb *handlers, void *arg)
{
    if (srv == NULL || svc == NULL || handlers == NULL)
        return RR_EINVAL;
    rr__method *hows = calloc(svc->n_methods + 1, sizeof(*hows));
    if (hows == NULL)
        return RR_ENOMEM;
    for (unsigned i = 0; i < svc->n_methods; i++)
        hows[i] = (rr__method){.handler = handlers[i], .arg = arg};
    int rv = srv_add(srv, svc, hows);
    free(hows);
    return rv;
}

int
rr_stub_add_service(rr_server *srv, const ProtobufCServiceDescriptor *svc,
                    const rr_stub_handler *tramps, const rr_stub_fn *fns,
                    void *arg)
{
    if (srv == NULL || svc == NULL || tramps == NULL || fns == NULL)
        return RR_EINVAL;
    rr__method *hows = calloc(svc->n_methods + 1, sizeof(*hows));
    if (hows == NULL)
        return RR_ENOMEM;
    for (unsigned i = 0; i < svc->n_methods; i++)
        hows[i] = (rr__method){
            .tramp = fns[i] != NULL ? tramps[i] : NULL,
            .fn = fns[i],
            .arg = arg,
        };
    int rv = srv_add(srv, svc, hows);
    free(hows);
    return rv;
}

// ----------------------------------------------------------- connections

void
rr__server_link(rr_server *srv, rr_sconn *sc)
{
    sc->prev = NULL;
    sc->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = sc;
    srv->conns = sc;
    srv->n_conns++;
}

void
rr__server_unlink(rr_server *srv, rr_sconn *sc)
{
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        srv->conns = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    sc->prev = sc->next = NULL;
    srv->n_conns--;
}

// --------------------------------------------------------------- accept

static void
srv_conn_cfg(rr_server *srv, rr_conn_cfg *cfg)
{
    const rr_server_opts *o = &srv->opts;

    cfg->local.max_frame_size = o->max_frame_size;
    cfg->local.max_concurrent_calls = o->max_concurrent_calls;
    cfg->local.heartbeat_interval_ms =
        (uint32_t) (o->heartbeat_interval * 1000);
    cfg->local.max_metadata_size = o->max_metadata_size;
    cfg->handshake_timeout = o->handshake_timeout;
    cfg->hb_interval = o->heartbeat_interval;
    cfg->hb_timeout = o->heartbeat_timeout;
    cfg->out_high = o->out_high_water;
    cfg->out_low = o->out_low_water;
    cfg->keepalive = o->tcp_keepalive;
    cfg->scratch = srv->scratch;
}

// The listener sleeps ACCEPT_PAUSE seconds: the kernel reports it
// readable for as long as peers wait, and accept keeps failing.
static void
listener_pause(rr__listener *l)
{
    ev_io_stop(l->srv->loop, &l->io);
    if (!ev_is_active(&l->pause)) {
        ev_timer_set(&l->pause, ACCEPT_PAUSE, 0.);
        ev_timer_start(l->srv->loop, &l->pause);
    }
}

// The pause is over: get the spare back if it was lost, and accept again
// (a listener still out of descriptors pauses again at once).
static void
srv_pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    rr__listener *l = RR_CONTAINER_OF(w, rr__listener, pause);
    rr_server *srv = l->srv;

    if (srv->spare_fd < 0)
        srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (l->fd >= 0)
        ev_io_start(loop, &l->io);
}

// accept failed with EMFILE/ENFILE (or the kernel's ENOBUFS/ENOMEM):
// libev's "accept()ing when you can't".  With the spare descriptor the
// peers waiting now (up to budget) are accepted into it and dropped at
// once, so they learn at once instead of timing out in the backlog; then,
// spare or not, the listener pauses, since without descriptors the next
// accept fails too and a level-triggered watcher would spin at 100 % CPU.
// Logged at most once a second.
static void
srv_shed(rr_server *srv, rr__listener *l, int err, int budget)
{
    ev_tstamp now = ev_now(srv->loop);
    bool spare = srv->spare_fd >= 0 && (err == EMFILE || err == ENFILE);

    if (now - srv->emfile_logged >= 1.0) {
        rr__log(RR_LOG_WARN,
                "accept: %s; %s, accepting again every %g s until "
                "descriptors are back",
                strerror(err),
                spare ? "shedding new connections" : "not accepting",
                ACCEPT_PAUSE);
        srv->emfile_logged = now;
    }
    if (spare) {
        close(srv->spare_fd);
        for (int i = 0; i < budget; i++) {
            int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                close(fd);
            else if (errno != EINTR && errno != ECONNABORTED)
                break; // none left, or even the spare's slot is no use
        }
        // Lost if its number is taken meanwhile; the pause retries.
        srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    listener_pause(l);
}

void
rr__server_adopt(rr_server *srv, int fd, const struct sockaddr *sa,
                 socklen_t len)
{
    char peer[80];

    rr__addr_format(sa, len, peer, sizeof(peer));
    if (srv->n_conns >= srv->opts.max_connections || srv->shutting ||
        srv->freed) {
        rr__log(RR_LOG_WARN, "%s: refused: %" PRIu32 " connections open", peer,
                srv->n_conns);
        close(fd);
        return;
    }
    rr_conn_cfg cfg;
    srv_conn_cfg(srv, &cfg);
    rr__sconn_open(srv, srv->core, fd, peer, &cfg);
}

// Round-robin over this loop and the extra ones: a connection stays on
// the loop it is handed to.
static void
srv_adopt(rr_server *srv, int fd, const struct sockaddr *sa, socklen_t len)
{
    if (srv->loops != NULL) {
        unsigned i = srv->next_loop;
        srv->next_loop = (i + 1) % (rr__loops_count(srv->loops) + 1);
        if (i > 0) {
            rr__loops_hand(srv->loops, i - 1, fd, sa, len);
            return;
        }
    }
    rr__server_adopt(srv, fd, sa, len);
}

static void
srv_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    rr__listener *l = RR_CONTAINER_OF(w, rr__listener, io);
    rr_server *srv = l->srv;

    rr__server_hold(srv);
    // An adopted connection's start may shut the server down or free it,
    // which closes the listener: check before each accept.
    for (int i = 0; i < ACCEPTS_PER_WAKEUP && !srv->freed && l->fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *) &ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            srv_adopt(srv, fd, (struct sockaddr *) &ss, len);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM)
            srv_shed(srv, l, errno, ACCEPTS_PER_WAKEUP - i);
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            rr__log(RR_LOG_WARN, "accept: %s", strerror(errno));
        break;
    }
    rr__server_release(srv);
}

// why gets what failed: "bind: Address already in use".
static int
listener_syserr(const char *what, int err, char *why, size_t n)
{
    snprintf(why, n, "%s: %s", what, strerror(err));
    return rr__err_from_errno(err);
}

// The Unix socket path is taken.  A socket nobody accepts on (connect is
// refused: its server died without unlinking it, kill -9 say) is removed
// so that bind can try again, as gRPC does; a live one, or anything that
// is not a socket, is left alone.  Returns RR_OK when the path is free.
static int
listener_unix_reclaim(const rr_addr *a, char *why, size_t n)
{
    const char *path = ((const struct sockaddr_un *) &a->ss)->sun_path;
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? RR_OK // gone meanwhile
                               : listener_syserr("stat", errno, why, n);
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(why, n, "%s exists and is not a socket", path);
        return RR_EADDRINUSE;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return listener_syserr("socket", errno, why, n);
    int rv = connect(probe, (const struct sockaddr *) &a->ss, a->len);
    int err = errno;
    close(probe);
    if (rv == 0 || err == EAGAIN) { // accepted, or its backlog is full
        snprintf(why, n, "a server is listening on it");
        return RR_EADDRINUSE;
    }
    if (err != ECONNREFUSED) {
        snprintf(why, n, "the socket is in use (connect: %s)", strerror(err));
        return err == EACCES || err == EPERM ? RR_EACCES : RR_EADDRINUSE;
    }
    if (unlink(path) != 0 && errno != ENOENT)
        return listener_syserr("removing the stale socket", errno, why, n);
    rr__log(RR_LOG_INFO, "listen unix:%s: replaced a stale socket", path);
    return RR_OK;
}

static int
listener_bind(int fd, const rr_addr *a, char *why, size_t n)
{
    if (bind(fd, (const struct sockaddr *) &a->ss, a->len) == 0)
        return RR_OK;
    int err = errno;
    if (err == EADDRINUSE && a->ss.ss_family == AF_UNIX) {
        int rv = listener_unix_reclaim(a, why, n);
        if (rv != RR_OK)
            return rv;
        if (bind(fd, (const struct sockaddr *) &a->ss, a->len) == 0)
            return RR_OK;
        err = errno;
    }
    return listener_syserr("bind", err, why, n);
}

// Opens, binds and starts a listener on a.  Returns RR_OK, or an rr_err
// with why saying what failed.
static int
listener_open(rr_server *srv, const rr_addr *a, rr__listener *l, char *why,
              size_t n)
{
    int one = 1, rv;
    int fd =
        socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return listener_syserr("socket", errno, why, n);
    if (a->ss.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a->ss.ss_family == AF_INET6) {
        // The wildcard "[::]" is dual-stack, IPv4 clients included; a
        // specific address is that address only.  Both explicit: the
        // system's default (net.ipv6.bindv6only) varies.
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &a->ss;
        int v6only = !IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    if ((rv = listener_bind(fd, a, why, n)) != RR_OK) {
        close(fd);
        return rv;
    }
    l->path[0] = '\0';
    if (a->ss.ss_family == AF_UNIX) {
        struct stat st;
        snprintf(l->path, sizeof(l->path), "%s",
                 ((const struct sockaddr_un *) &a->ss)->sun_path);
        // Remembered so that free unlinks our socket, not a successor's.
        l->dev = 0;
        l->ino = 0;
        if (stat(l->path, &st) == 0) {
            l->dev = st.st_dev;
            l->ino = st.st_ino;
        }
    }
    if (listen(fd, srv->opts.backlog) != 0) {
        rv = listener_syserr("listen", errno, why, n);
        if (l->path[0] != '\0')
            unlink(l->path);
        close(fd);
        return rv;
    }
    l->fd = fd;
    l->srv = srv;
    ev_io_init(&l->io, srv_accept_cb, fd, EV_READ);
    ev_timer_init(&l->pause, srv_pause_cb, ACCEPT_PAUSE, 0.);
    ev_io_start(srv->loop, &l->io);
    return RR_OK;
}

// Records why rr_server_listen failed, "listen " and the sentence fmt
// makes, in rr_server_last_error, rr_last_error and the log.
__attribute__((format(printf, 3, 4))) static int
listen_fail(rr_server *srv, int rv, const char *fmt, ...)
{
    char why[sizeof(srv->last_error) - 7];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(srv->last_error, sizeof(srv->last_error), "listen %s", why);
    rr__set_last_error("%s", srv->last_error);
    rr__log(RR_LOG_ERROR, "%s", srv->last_error);
    return rv;
}

// The port fd is bound to, or 0 when unknown (it listens all the same).
static uint16_t
listener_port(int fd)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len = sizeof(u);

    memset(&u, 0, sizeof(u));
    if (getsockname(fd, &u.sa, &len) != 0)
        return 0;
    return ntohs(u.sa.sa_family == AF_INET ? u.in.sin_port : u.in6.sin6_port);
}

// After the first listener: the method table is frozen for every loop to
// share, loop 0's hook runs (it may free the server: held meanwhile),
// and the extra loops start.
static int
srv_serve(rr_server *srv, const char *address)
{
    if (srv->loop_inited)
        return RR_OK;
    srv->loop_inited = true;
    if (srv->loops != NULL) // its threads read the table from now on
        rr__methods_freeze(srv->methods);
    rr__server_hold(srv);
    if (srv->opts.loop_init != NULL)
        srv->opts.loop_init(srv, srv->loop, 0, srv->opts.loop_arg);
    if (srv->freed) {
        rr__set_last_error("listen %.80s: the server was freed by its "
                           "loop_init hook",
                           address);
        rr__server_release(srv);
        return RR_ECLOSED;
    }
    if (srv->loops != NULL && rr__loops_start(srv->loops) != RR_OK) {
        rr__log(RR_LOG_WARN, "listen %s: serving on one loop only", address);
        rr__loops_free(srv->loops);
        srv->loops = NULL;
    }
    rr__server_release(srv);
    return RR_OK;
}

int
rr_server_listen(rr_server *srv, const char *address)
{
    rr_addr a;
    char why[160];
    bool any;
    int rv;

    if (srv == NULL || address == NULL) {
        rr__set_last_error("rr_server_listen: NULL %s",
                           srv == NULL ? "server" : "address");
        return RR_EINVAL;
    }
    srv->last_error[0] = '\0';
    if (srv->shutting)
        return listen_fail(srv, RR_EINVAL, "%.80s: the server is shut down",
                           address);
    if (srv->n_listeners == RR__MAX_LISTENERS)
        return listen_fail(srv, RR_EINVAL, "%.80s: at most %d listeners",
                           address, RR__MAX_LISTENERS);
    if (rr__addr_parse_listen(address, &a, &any, why, sizeof(why)) != RR_OK)
        return listen_fail(srv, RR_EINVAL, "%s", why);
    rr__listener *l = &srv->listeners[srv->n_listeners];
    rv = listener_open(srv, &a, l, why, sizeof(why));
    if (rv == RR_EADDRNOTAVAIL && any) { // ":port" on a machine without IPv6
        rr__addr_any4(&a);
        rv = listener_open(srv, &a, l, why, sizeof(why));
    }
    if (rv != RR_OK)
        return listen_fail(srv, rv, "%.80s: %s", address, why);
    srv->n_listeners++;
    if (srv->port == 0 && a.ss.ss_family != AF_UNIX)
        srv->port = listener_port(l->fd);
    return srv_serve(srv, address);
}

size_t
rr__server_buffered(const rr_server *srv)
{
    size_t n = 0;

    for (const rr_sconn *sc = srv->conns; sc != NULL; sc = sc->next)
        n += rr__buf_size(&sc->c.out);
    return n;
}

const char *
rr_server_last_error(const rr_server *srv)
{
    return srv->last_error;
}

uint16_t
rr_server_port(const rr_server *srv)
{
    return srv->port;
}

static void
srv_close_listeners(rr_server *srv)
{
    for (size_t i = 0; i < srv->n_listeners; i++) {
        rr__listener *l = &srv->listeners[i];
        ev_io_stop(srv->loop, &l->io);
        ev_timer_stop(srv->loop, &l->pause);
        close(l->fd);
        l->fd = -1;
        struct stat st;
        if (l->path[0] != '\0' && lstat(l->path, &st) == 0 &&
            st.st_dev == l->dev && st.st_ino == l->ino)
            unlink(l->path);
    }
    srv->n_listeners = 0;
}

// -------------------------------------------------------------- shutdown

void
rr__server_check_done(rr_server *srv)
{
    if (!srv->shutting || srv->n_conns > 0 || srv->shutdown_cb == NULL ||
        (srv->loops != NULL && !rr__loops_done(srv->loops)))
        return;
    ev_timer_stop(srv->loop, &srv->grace);
    ev_timer_stop(srv->loop, &srv->linger);
    rr_shutdown_cb cb = srv->shutdown_cb;
    srv->shutdown_cb = NULL;
    cb(srv, srv->shutdown_arg);
}

static void
srv_linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_server *srv = RR_CONTAINER_OF(w, rr_server, linger);

    rr__server_hold(srv);
    while (srv->conns != NULL)
        rr__conn_close(&srv->conns->c, RR_ETIMEDOUT,
                       "peer did not close after shutdown");
    rr__server_check_done(srv); // also when there was none to close
    rr__server_release(srv);
}

// Runs fn on each open connection of srv.  fn may run user callbacks,
// which may close any connection or free the server, so no pointer is
// followed across it: every connection is held and linked into a
// snapshot first, the walk follows the snapshot, and it stops once the
// server is freed.  The caller holds srv.
static void
srv_each_conn(rr_server *srv, void (*fn)(rr_sconn *sc))
{
    rr_sconn *first = srv->conns, *sc, *next;

    for (sc = first; sc != NULL; sc = sc->next) {
        sc->walk_next = sc->next;
        rr__conn_hold(&sc->c);
    }
    for (sc = first; sc != NULL && !srv->freed; sc = sc->walk_next) {
        if (sc->c.state != RR_CONN_CLOSED)
            fn(sc);
    }
    for (sc = first; sc != NULL; sc = next) {
        next = sc->walk_next;
        rr__conn_release(&sc->c); // frees a connection closed meanwhile
    }
}

static void
srv_grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    rr_server *srv = RR_CONTAINER_OF(w, rr_server, grace);

    rr__server_hold(srv);
    srv_each_conn(srv, rr__sconn_grace_over);
    if (!srv->freed) { // a cancel callback may have freed it
        ev_timer_set(&srv->linger, LINGER_AFTER_GRACE, 0.);
        ev_timer_start(loop, &srv->linger);
    }
    rr__server_release(srv);
}

int
rr_server_shutdown(rr_server *srv, double grace, rr_shutdown_cb cb, void *arg)
{
    if (srv == NULL || srv->shutting)
        return RR_EINVAL;
    rr__server_hold(srv);
    srv->shutting = true;
    srv->shutdown_cb = cb;
    srv->shutdown_arg = arg;
    srv_close_listeners(srv);

    srv_each_conn(srv, rr__sconn_goaway);
    if (srv->freed) { // by a cancel callback of a closed connection
        rr__server_release(srv);
        return RR_OK;
    }
    grace = grace >= 0 ? grace : srv->opts.grace_period;
    if (srv->loops != NULL)
        rr__loops_shutdown(srv->loops, grace);
    ev_timer_set(&srv->grace, grace, 0.);
    ev_timer_start(srv->loop, &srv->grace);
    if (srv->n_conns == 0) {
        // Nothing to wait for, but cb must not run before we return.
        ev_timer_stop(srv->loop, &srv->grace);
        ev_timer_set(&srv->linger, 0., 0.);
        ev_timer_start(srv->loop, &srv->linger);
    }
    rr__server_release(srv);
    return RR_OK;
}

// -------------------------------------------------------- new and free

void
rr_server_opts_init(rr_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
    o->backlog = 511;
    o->max_connections = 10000;
    o->max_concurrent_calls = 1024;
    o->max_frame_size = RR_DEFAULT_MAX_FRAME_SIZE;
    o->max_metadata_size = RR_DEFAULT_MAX_METADATA_SIZE;
    o->handshake_timeout = 10.0;
    o->heartbeat_interval = 30.0;
    o->heartbeat_timeout = 20.0;
    o->out_high_water = (size_t) 4 * 1024 * 1024;
    o->out_low_water = (size_t) 1024 * 1024;
    o->grace_period = 10.0;
    o->tcp_keepalive = false;
    o->loops = 1;
    o->loop_init = NULL;
    o->loop_fini = NULL;
    o->loop_arg = NULL;
}

// The first option out of range, or NULL when all are fine.
static const char *
opts_valid(const rr_server_opts *o)
{
    if (o->max_concurrent_calls == 0)
        return "max_concurrent_calls is 0";
    if (o->max_frame_size < RR_MIN_MAX_FRAME_SIZE)
        return "max_frame_size is below the protocol's minimum";
    if (o->max_metadata_size > RR_META_MAX)
        return "max_metadata_size is above the protocol's maximum";
    if (!(o->handshake_timeout > 0))
        return "handshake_timeout is not positive";
    if (!(o->heartbeat_interval >= 0))
        return "heartbeat_interval is negative";
    if (!(o->heartbeat_timeout > 0))
        return "heartbeat_timeout is not positive";
    if (o->out_low_water > o->out_high_water)
        return "out_low_water is above out_high_water";
    if (o->backlog <= 0)
        return "backlog is not positive";
    if (o->loops > RR_MAX_LOOPS)
        return "loops is above RR_MAX_LOOPS";
    return NULL;
}

// Opens the spare descriptor (shed with on EMFILE), and makes sure one
// more is free: ev_async_start may need it for the loop's eventfd, and
// libev aborts the process when it cannot make one.
static int
srv_reserve_fds(rr_server *srv)
{
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int probe =
        srv->spare_fd >= 0 ? fcntl(srv->spare_fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (probe >= 0) {
        close(probe);
        return RR_OK;
    }
    int err = errno;
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    srv->spare_fd = -1;
    rr__set_last_error("rr_server_new: no descriptor for the server and "
                       "its loop: %s",
                       strerror(err));
    return rr__err_from_errno(err);
}

// What rr_server_new and the extra loops' servers share: srv->opts is
// set and valid; the server dispatches from methods (a reference taken).
static int
srv_make(rr_server *srv, struct ev_loop *loop, rr__methods *methods)
{
    int rv;

    srv->loop = loop;
    srv->spare_fd = -1;
    srv->emfile_logged = -1e9;
    srv->methods = rr__methods_ref(methods);
    ev_timer_init(&srv->grace, srv_grace_cb, 0., 0.);
    ev_timer_init(&srv->linger, srv_linger_cb, 0., 0.);
    if ((srv->scratch = rr__scratch_get(loop)) == NULL)
        return RR_ENOMEM;
    if ((rv = srv_reserve_fds(srv)) != RR_OK)
        return rv;
    // Before the extra loops, which take descriptors of their own.
    if ((rv = rr__core_new(&srv->core, loop, methods)) != RR_OK)
        return rv;
    if (srv->opts.loops > 1)
        return rr__loops_new(&srv->loops, loop, srv->opts.loops - 1, srv,
                             &srv->opts, methods, srv_loops_done, srv);
    return RR_OK;
}

// Frees what srv_make made, and srv.
static void
srv_unmake(rr_server *srv)
{
    rr__loops_free(srv->loops);
    if (srv->core != NULL)
        rr__core_orphan(srv->core); // no call yet: freed now
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    rr__scratch_unref(srv->scratch);
    rr__methods_unref(srv->methods);
    free(srv);
}

int
rr_server_new(rr_server **out, struct ev_loop *loop, const rr_server_opts *opts)
{
    if (out == NULL || loop == NULL) {
        rr__set_last_error("rr_server_new: NULL %s",
                           out == NULL ? "out" : "loop");
        return RR_EINVAL;
    }
    *out = NULL;
    rr_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return RR_ENOMEM;
    rr_server_opts_init(&srv->opts);
    if (opts != NULL &&
        !rr__opts_take(&srv->opts, sizeof(srv->opts), opts,
                       RR__OPTS_SIZE_UPTO(rr_server_opts, loop_arg))) {
        rr__set_last_error("rr_server_new: rr_server_opts of %zu bytes; this "
                           "library takes up to %zu (fill them with "
                           "rr_server_opts_init)",
                           opts->struct_size, sizeof(srv->opts));
        free(srv);
        return RR_EINVAL;
    }
    const char *bad = opts_valid(&srv->opts);
    if (bad != NULL) {
        rr__set_last_error("rr_server_new: invalid options: %s", bad);
        free(srv);
        return RR_EINVAL;
    }
    rr__methods *methods = rr__methods_new();
    if (methods == NULL) {
        free(srv);
        return RR_ENOMEM;
    }
    int rv = srv_make(srv, loop, methods);
    rr__methods_unref(methods); // srv holds its own
    if (rv != RR_OK) {
        srv_unmake(srv);
        return rv;
    }
    *out = srv;
    return RR_OK;
}

int
rr__server_new_child(rr_server **out, struct ev_loop *loop,
                     const rr_server_opts *opts, rr__methods *methods)
{
    rr_server *srv = calloc(1, sizeof(*srv));

    *out = NULL;
    if (srv == NULL)
        return RR_ENOMEM;
    srv->opts = *opts;
    int rv = srv_make(srv, loop, methods);
    if (rv != RR_OK) {
        srv_unmake(srv);
        return rv;
    }
    *out = srv;
    return RR_OK;
}

// Every extra loop finished its part of a shutdown.
static void
srv_loops_done(void *arg)
{
    rr_server *srv = arg;

    rr__server_hold(srv);
    rr__server_check_done(srv);
    rr__server_release(srv);
}

// A freed server goes once none of its callbacks is on the stack.  Its
// calls still held by handlers live on in the core rr_server_free
// orphaned, which goes with the last of them.
void
rr__server_destroy(rr_server *srv)
{
    srv_unmake(srv); // its core was orphaned by rr_server_free
}

void
rr_server_free(rr_server *srv)
{
    if (srv == NULL || srv->freed)
        return;
    rr__server_hold(srv);
    srv->freed = true;
    srv->shutdown_cb = NULL;
    srv_close_listeners(srv);
    rr__loops_free(srv->loops); // joins their threads
    srv->loops = NULL;
    // A connection leaves the list as it closes, before its calls'
    // cancel callbacks run (which may free the server again: a no-op).
    while (srv->conns != NULL)
        rr__conn_close(&srv->conns->c, RR_ECLOSED, "server freed");
    if (srv->loop_inited && srv->opts.loop_fini != NULL)
        srv->opts.loop_fini(srv, srv->loop, 0, srv->opts.loop_arg);
    ev_timer_stop(srv->loop, &srv->grace);
    ev_timer_stop(srv->loop, &srv->linger);
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    srv->spare_fd = -1;
    // The calls let go of the server now, not when the callback that
    // freed it unwinds: from here on they belong to no loop, and a worker
    // may complete one at once (server/call.h).
    rr__core_orphan(srv->core);
    srv->core = NULL;
    rr__server_release(srv); // destroys now, or once the callbacks unwind
}
