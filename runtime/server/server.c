// SPDX-License-Identifier: MIT
//
// server.c -- rr_server and rr_call: accept, dispatch, deadlines, cancel,
// limits, replies from other threads, graceful shutdown.
//
// Ownership: the server owns its connections (rr_sconn) and every call
// until the handler completes it; a call outlives its connection when the
// peer goes away mid-call (it is then cancelled, and completing it only
// frees it).  The server struct itself is freed only when none of its
// callbacks is on the stack, so a handler may free the server.

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/container.h"
#include "util/evtimer.h"
#include "transport/addr.h"
#include "util/arena.h"
#include "server/child.h"
#include "transport/conn.h"
#include "util/defer.h"
#include "util/errmap.h"
#include "util/idmap.h"
#include "util/log.h"
#include "server/loops.h"
#include "codec/meta.h"
#include "util/opts.h"
#include "util/poison.h"
#include "rawrpc/rawrpc.h"
#include "rawrpc/stub.h"
#include "server/server.h"
#include "codec/utf8.h"

#define MAX_LISTENERS      8
#define ACCEPTS_PER_WAKEUP 64
#define CALL_POOL_MAX      256
#define LINGER_AFTER_GRACE 2.0 // seconds to wait for peers' EOF
// Seconds a listener sleeps when accept finds no descriptor (or memory).
#define ACCEPT_PAUSE 0.1

typedef struct srv_method {
    char *name; // "/pkg.Service/Method"; NULL = empty slot
    size_t name_len;
    rr_method m;
    rr_handler_cb handler; // or:
    rr_stub_handler tramp; // a generated trampoline, with
    rr_stub_fn fn;         // its typed handler; both NULL: UNIMPLEMENTED
    void *arg;
} srv_method;

typedef struct rr_sconn rr_sconn;

typedef struct srv_listener {
    ev_io io;
    ev_timer pause; // accept failed for want of descriptors: retry then
    int fd;         // -1 once closed
    rr_server *srv;
    char path[108]; // unix socket to unlink at free, or ""
    dev_t dev;      // ... if it is still the one we bound
    ino_t ino;
} srv_listener;

struct rr_server {
    struct ev_loop *loop;
    rr_server_opts opts;
    srv_method *methods;           // open addressing by name
    const srv_method *last_method; // found last, tried first
    size_t methods_cap, n_methods;
    srv_listener listeners[MAX_LISTENERS];
    size_t n_listeners;
    uint16_t port;
    rr_sconn *conns; // doubly linked
    uint32_t n_conns;
    rr_call *live; // every call not yet completed, doubly linked
    rr_call *pool; // free calls, singly linked through next
    size_t n_pool;
    rr__loops *loops;    // opts.loops > 1: the extra loops, or NULL
    unsigned next_loop;  // where the next connection goes
    bool loop_inited;    // opts.loop_init ran for loop 0
    rr_scratch *scratch; // the loop's shared read buffer
    rr__defer *defer;    // the loop's deferred-completion queue
    int spare_fd;        // shed connections with it on EMFILE
    char last_error[RR__LAST_ERROR_MAX]; // the latest listen's failure
    ev_tstamp emfile_logged;
    ev_async async; // replies from other threads
    pthread_mutex_t mu;
    rr_call *posted; // completed by other threads, under mu
    // shutdown
    bool shutting;
    ev_timer grace, linger;
    rr_shutdown_cb shutdown_cb;
    void *shutdown_arg;
    int busy;
    bool freed;
};

struct rr_sconn {
    rr_conn c;
    rr_server *srv;
    rr_sconn *prev, *next;
    rr_sconn *walk_next; // srv_each_conn's snapshot, kept when unlinked
    rr_idmap calls;      // call ID -> rr_call, until its RESPONSE is sent
    uint32_t last_id;    // greatest call ID received
    bool goaway_sent;
    bool peer_done; // the client's GOAWAY or EOF: no more REQUESTs
};

struct rr_call {
    rr_server *srv; // NULL once the server is freed
    rr_sconn *sc;   // NULL once the connection is gone
    rr_call *prev, *next;
    uint32_t id;
    const srv_method *m;
    ProtobufCMessage *req;
    Rawrpc__V1__RequestMeta *meta; // only when it carried user metadata
    ev_timer deadline;
    ev_tstamp deadline_at; // loop time; 0 = none
    atomic_bool cancelled;
    bool responded; // its RESPONSE is sent, or can no longer be
    // Claimed by its first completion, from whichever thread: then in
    // the mailbox, in the pool, or being freed.
    atomic_bool completed;
    rr_cancel_cb cancel_cb;
    void *cancel_arg;
    rr__defer_node cancel_later; // rr_call_on_cancel on a cancelled call
    rr__child *children;
    // a completion posted from another thread
    rr_call *posted_next;
    rr_status t_status;
    uint8_t *t_payload;
    size_t t_len;
    char *t_msg;
    const char *peer;   // the connection's name, or peer_copy
    char peer_copy[80]; // once the call has let go of its connection
    rr_arena arena;     // request and metadata live here
};

// ------------------------------------------------------------ busy guard

static void srv_destroy(rr_server *srv);
static void srv_loops_done(void *arg);

static void
srv_enter(rr_server *srv)
{
    srv->busy++;
}

static void
srv_leave(rr_server *srv)
{
    if (--srv->busy == 0 && srv->freed)
        srv_destroy(srv);
}

// --------------------------------------------------------------- methods

static uint64_t
name_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603u; // FNV-1a
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char) s[i]) * 1099511628211u;
    return h;
}

static bool
method_is(const srv_method *m, const char *name, size_t len)
{
    return m->name_len == len && memcmp(m->name, name, len) == 0;
}

// The method named by len bytes at name, or NULL.  Clients tend to call
// one method many times in a row, so the last one found is tried first.
static const srv_method *
method_find(rr_server *srv, const char *name, size_t len)
{
    if (srv->last_method != NULL && method_is(srv->last_method, name, len))
        return srv->last_method;
    if (srv->methods_cap == 0)
        return NULL;
    size_t mask = srv->methods_cap - 1;
    for (size_t i = name_hash(name, len) & mask;; i = (i + 1) & mask) {
        if (srv->methods[i].name == NULL)
            return NULL;
        if (method_is(&srv->methods[i], name, len))
            return srv->last_method = &srv->methods[i];
    }
}

// The empty slot where name goes in a table of cap (a power of two).
static srv_method *
method_slot(srv_method *tab, size_t cap, const char *name)
{
    size_t j = name_hash(name, strlen(name)) & (cap - 1);

    while (tab[j].name != NULL)
        j = (j + 1) & (cap - 1);
    return &tab[j];
}

static int
methods_grow(rr_server *srv)
{
    size_t cap = srv->methods_cap ? srv->methods_cap * 2 : 16;
    srv_method *old = srv->methods;
    srv_method *tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return RR_ENOMEM;
    for (size_t i = 0; i < srv->methods_cap; i++) {
        if (old[i].name != NULL)
            *method_slot(tab, cap, old[i].name) = old[i];
    }
    free(old);
    srv->last_method = NULL; // it pointed into the old table
    srv->methods = tab;
    srv->methods_cap = cap;
    return RR_OK;
}

static int
method_add(rr_server *srv, const ProtobufCServiceDescriptor *svc, unsigned i,
           const srv_method *how)
{
    const ProtobufCMethodDescriptor *md = &svc->methods[i];
    size_t n = strlen(svc->name) + strlen(md->name) + 3;
    char *name = malloc(n);

    if (name == NULL)
        return RR_ENOMEM;
    snprintf(name, n, "/%s/%s", svc->name, md->name);
    if (method_find(srv, name, n - 1) != NULL) {
        rr__log(RR_LOG_ERROR, "method %s is already registered", name);
        free(name);
        return RR_EINVAL;
    }
    if ((srv->n_methods + 1) * 2 > srv->methods_cap &&
        methods_grow(srv) != RR_OK) {
        free(name);
        return RR_ENOMEM;
    }
    srv_method *slot = method_slot(srv->methods, srv->methods_cap, name);
    *slot = *how;
    slot->name = name;
    slot->name_len = n - 1;
    slot->m = (rr_method){name, md->input, md->output};
    srv->n_methods++;
    return RR_OK;
}

// With extra loops, their threads read the method tables once running.
static bool
srv_may_register(const rr_server *srv)
{
    if (srv->loops != NULL && rr__loops_started(srv->loops)) {
        rr__log(RR_LOG_ERROR, "add services before rr_server_listen when "
                              "the server has more than one loop");
        return false;
    }
    return true;
}

int
rr_server_add_service(rr_server *srv, const ProtobufCServiceDescriptor *svc,
                      const rr_handler_cb *handlers, void *arg)
{
    if (srv == NULL || svc == NULL || handlers == NULL ||
        !srv_may_register(srv))
        return RR_EINVAL;
    for (unsigned i = 0; i < svc->n_methods; i++) {
        srv_method how = {.handler = handlers[i], .arg = arg};
        int rv = method_add(srv, svc, i, &how);
        if (rv != RR_OK)
            return rv;
    }
    for (unsigned i = 0; srv->loops && i < rr__loops_count(srv->loops); i++) {
        int rv = rr_server_add_service(rr__loops_server(srv->loops, i), svc,
                                       handlers, arg);
        if (rv != RR_OK)
            return rv;
    }
    return RR_OK;
}

int
rr_stub_add_service(rr_server *srv, const ProtobufCServiceDescriptor *svc,
                    const rr_stub_handler *tramps, const rr_stub_fn *fns,
                    void *arg)
{
    if (srv == NULL || svc == NULL || tramps == NULL || fns == NULL ||
        !srv_may_register(srv))
        return RR_EINVAL;
    for (unsigned i = 0; i < svc->n_methods; i++) {
        srv_method how = {
            .tramp = fns[i] != NULL ? tramps[i] : NULL,
            .fn = fns[i],
            .arg = arg,
        };
        int rv = method_add(srv, svc, i, &how);
        if (rv != RR_OK)
            return rv;
    }
    for (unsigned i = 0; srv->loops && i < rr__loops_count(srv->loops); i++) {
        int rv = rr_stub_add_service(rr__loops_server(srv->loops, i), svc,
                                     tramps, fns, arg);
        if (rv != RR_OK)
            return rv;
    }
    return RR_OK;
}

// ----------------------------------------------------------------- calls

static void
call_link(rr_call **head, rr_call *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

static void
call_unlink(rr_call **head, rr_call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void call_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);

// The pool keeps finished calls for reuse; in ASan builds they are
// poisoned there, so a completion of a call already completed is caught.
static void
pool_put(rr_server *srv, rr_call *call)
{
    call->next = srv->pool;
    srv->pool = call;
    srv->n_pool++;
    RR_POISON(call, sizeof(*call));
}

static rr_call *
pool_get(rr_server *srv)
{
    rr_call *call = srv->pool;

    if (call != NULL) {
        RR_UNPOISON(call, sizeof(*call));
        srv->pool = call->next;
        srv->n_pool--;
    }
    return call;
}

// rr_call_on_cancel's callback for a call already cancelled, from the
// loop: never inside rr_call_on_cancel itself.
static void
call_cancel_later(rr__defer_node *n)
{
    rr_call *call = RR_CONTAINER_OF(n, rr_call, cancel_later);
    rr_server *srv = call->srv;
    rr_cancel_cb cb = call->cancel_cb;

    call->cancel_cb = NULL;
    srv_enter(srv);
    if (cb != NULL)
        cb(call, call->cancel_arg); // may complete the call
    srv_leave(srv);
}

static rr_call *
call_new(rr_server *srv, rr_sconn *sc, uint32_t id)
{
    rr_call *call = pool_get(srv);

    if (call != NULL) {
        // reused, with its arena
    } else if ((call = malloc(sizeof(*call))) == NULL) {
        return NULL;
    } else {
        rr__arena_init(&call->arena); // once: pooled calls keep theirs
    }
    call->srv = srv;
    call->sc = sc;
    call->id = id;
    call->m = NULL;
    call->req = NULL;
    call->meta = NULL;
    call->deadline_at = 0;
    atomic_init(&call->cancelled, false);
    call->responded = false;
    atomic_init(&call->completed, false);
    call->cancel_cb = NULL;
    rr__defer_node_init(&call->cancel_later, call_cancel_later);
    call->children = NULL;
    call->t_payload = NULL;
    call->t_msg = NULL;
    call->peer = sc->c.peer_name; // copied only if the call outlives it
    ev_timer_init(&call->deadline, call_deadline_cb, 0., 0.);
    call_link(&srv->live, call);
    return call;
}

static void
call_free(rr_call *call)
{
    rr_server *srv = call->srv;

    while (call->children != NULL)
        rr__call_unlink_child(call->children);
    rr__arena_reset(&call->arena);
    if (call->t_payload != NULL) // only replies from other threads
        free(call->t_payload);
    if (call->t_msg != NULL)
        free(call->t_msg);
    rr__defer_cancel(srv->defer, &call->cancel_later);
    rr__timer_stop(srv->loop, &call->deadline);
    call_unlink(&srv->live, call);
    if (srv->n_pool < CALL_POOL_MAX) {
        pool_put(srv, call);
    } else {
        rr__arena_fini(&call->arena);
        free(call);
    }
    if (srv->freed && srv->live == NULL && srv->busy == 0)
        srv_destroy(srv); // the last call of a freed server
}

// Fills meta with a non-OK status and msg as the client may receive it
// (PROTOCOL.md 5.2): well-formed UTF-8 in text (RR_STATUS_MESSAGE_MAX + 1
// bytes), at most RR_STATUS_MESSAGE_MAX bytes, and shortened, on a
// character boundary, to the client's MAX_METADATA_SIZE.  The status
// itself is sent even when that limit cannot hold it.
static void
sconn_status_meta(const rr_sconn *sc, Rawrpc__V1__ResponseMeta *meta,
                  rr_status status, const char *msg, char *text)
{
    size_t len = rr__utf8_escape(text, RR_STATUS_MESSAGE_MAX + 1,
                                 (const uint8_t *) (msg != NULL ? msg : ""),
                                 msg != NULL ? strlen(msg) : 0, false);
    size_t room = rr__response_message_room((uint32_t) status,
                                            sc->c.peer.max_metadata_size);

    text[rr__utf8_cut(text, len, room)] = '\0';
    rawrpc__v1__response_meta__init(meta);
    meta->status = (uint32_t) status;
    meta->message = text;
}

// Sends a RESPONSE on sc.  A reply too large for the client becomes
// RESOURCE_EXHAUSTED; a full output buffer closes the connection.
static void
sconn_respond(rr_sconn *sc, uint32_t id, rr_status status, const char *msg,
              const ProtobufCMessage *reply, const uint8_t *raw, size_t raw_len)
{
    Rawrpc__V1__ResponseMeta meta;
    const ProtobufCMessage *mp = NULL; // an OK reply carries no metadata
    char text[RR_STATUS_MESSAGE_MAX + 1];
    char buf[160];
    int rv;

    if (sc->c.state == RR_CONN_CLOSED)
        return;
    if (status != RR_STATUS_OK) {
        sconn_status_meta(sc, &meta, status, msg, text);
        mp = &meta.base;
    }
    uint32_t max = sc->c.peer.max_frame_size;
    if (raw != NULL || (reply == NULL && status == RR_STATUS_OK))
        rv = rr__call_put_raw(&sc->c.out, RR_FRAME_RESPONSE, id, mp, raw,
                              raw_len, max);
    else
        rv = rr__call_put(&sc->c.out, RR_FRAME_RESPONSE, id, mp, reply, max);
    if (rv == RR_EMSGSIZE) {
        size_t n =
            reply != NULL ? protobuf_c_message_get_packed_size(reply) : raw_len;
        snprintf(buf, sizeof(buf),
                 "reply of %zu bytes exceeds the client's %" PRIu32
                 "-byte limit",
                 n, max);
        sconn_status_meta(sc, &meta, RR_STATUS_RESOURCE_EXHAUSTED, buf, text);
        rv = rr__call_put(&sc->c.out, RR_FRAME_RESPONSE, id, &meta.base, NULL,
                          max);
    }
    if (rv != RR_OK) {
        rr__conn_fail(&sc->c, RR_GOAWAY_INTERNAL_ERROR, rv,
                      "no room for a response: %s", rr_strerror(rv));
        return;
    }
    rr__conn_queued(&sc->c);
}

// Lets go of the call's connection, which may now be freed before the
// call is: the peer's name is copied here, not for every call.
static void
call_detach(rr_call *call)
{
    if (call->sc == NULL)
        return;
    snprintf(call->peer_copy, sizeof(call->peer_copy), "%s", call->peer);
    call->peer = call->peer_copy;
    call->sc = NULL;
}

// The call's RESPONSE is settled: it no longer counts against the limit.
static void
call_settle(rr_call *call)
{
    rr_sconn *sc = call->sc;

    call->responded = true;
    if (call->srv != NULL)
        rr__timer_stop(call->srv->loop, &call->deadline);
    if (sc == NULL)
        return;
    rr__idmap_del(&sc->calls, call->id);
    if ((sc->goaway_sent || sc->peer_done) && sc->calls.count == 0) {
        call_detach(call); // finishing may free the connection
        rr__conn_finish(&sc->c);
    }
}

// Cancels the call: answers status on its connection (unless gone or
// answered), tells its children, then its cancel callback (last: that
// callback may complete and free the call).
static void
call_cancel(rr_call *call, rr_status status, const char *msg)
{
    if (atomic_load(&call->cancelled))
        return;
    atomic_store(&call->cancelled, true);
    if (!call->responded) {
        if (call->sc != NULL)
            sconn_respond(call->sc, call->id, status, msg, NULL, NULL, 0);
        call_settle(call);
    }
    call_detach(call); // answered: it stays only until its handler is done
    if (atomic_load(&call->completed))
        return; // its response failed and closed the connection: the
                // handler is done with it, so nothing of the handler's runs
    while (call->children != NULL) {
        rr__child *ch = call->children;
        rr__call_unlink_child(ch);
        ch->cancel(ch);
    }
    if (call->cancel_cb != NULL) {
        rr_cancel_cb cb = call->cancel_cb;
        call->cancel_cb = NULL;
        cb(call, call->cancel_arg);
    }
}

static void
call_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_call *call = RR_CONTAINER_OF(w, rr_call, deadline);
    rr_server *srv = call->srv;

    srv_enter(srv);
    call_cancel(call, RR_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
    srv_leave(srv);
}

// Claims the call for its one completion, arbitrated here for every
// path and thread: the loop's rr_call_reply and rr_call_fail, and the
// _from_thread forms, whose completion waits in the mailbox meanwhile (a
// cancel on the loop then runs no callback for it).  A call already
// claimed is in the mailbox, the pool or reused: a second completion must
// not push it into the pool again, which would hand it to two requests
// and make the pool a cycle.
static bool
call_completable(rr_call *call, const char *fn)
{
    if (!atomic_exchange(&call->completed, true))
        return true;
    rr__bug("%s: call to %s completed twice", fn,
            call->m != NULL ? call->m->name : "?");
    return false;
}

// Completes the call with a message reply, raw bytes, or a status.
static void
call_complete(rr_call *call, rr_status status, const char *msg,
              const ProtobufCMessage *reply, const uint8_t *raw, size_t raw_len)
{
    atomic_store(&call->completed, true);
    if (!call->responded && call->sc != NULL) {
        sconn_respond(call->sc, call->id, status, msg, reply, raw, raw_len);
        call_settle(call);
    }
    call_free(call);
}

int
rr_call_reply(rr_call *call, const ProtobufCMessage *reply)
{
    if (!call_completable(call, "rr_call_reply"))
        return RR_EINVAL;
    if (reply == NULL || reply->descriptor != call->m->m.output) {
        rr__log(RR_LOG_ERROR, "%s: reply is not a %s", call->m->name,
                call->m->m.output->name);
        call_complete(call, RR_STATUS_INTERNAL, "reply of the wrong type", NULL,
                      NULL, 0);
        return RR_EINVAL;
    }
    call_complete(call, RR_STATUS_OK, NULL, reply, NULL, 0);
    return RR_OK;
}

void
rr_call_fail(rr_call *call, rr_status status, const char *message)
{
    if (!call_completable(call, "rr_call_fail"))
        return;
    if (status == RR_STATUS_OK)
        status = RR_STATUS_UNKNOWN; // OK with no reply is not a reply
    call_complete(call, status, message, NULL, NULL, 0);
}

static void
call_post(rr_call *call)
{
    rr_server *srv = call->srv;

    pthread_mutex_lock(&srv->mu);
    call->posted_next = srv->posted;
    srv->posted = call;
    pthread_mutex_unlock(&srv->mu);
    ev_async_send(srv->loop, &srv->async);
}

void
rr_call_reply_from_thread(rr_call *call, const ProtobufCMessage *reply)
{
    if (!call_completable(call, "rr_call_reply_from_thread"))
        return;
    size_t n = protobuf_c_message_get_packed_size(reply);

    call->t_status = RR_STATUS_OK;
    if (reply->descriptor != call->m->m.output) {
        call->t_status = RR_STATUS_INTERNAL;
    } else if ((call->t_payload = malloc(n > 0 ? n : 1)) == NULL) {
        call->t_status = RR_STATUS_RESOURCE_EXHAUSTED;
    } else {
        protobuf_c_message_pack(reply, call->t_payload);
        call->t_len = n;
    }
    call_post(call);
}

void
rr_call_fail_from_thread(rr_call *call, rr_status status, const char *message)
{
    if (!call_completable(call, "rr_call_fail_from_thread"))
        return;
    call->t_status = status == RR_STATUS_OK ? RR_STATUS_UNKNOWN : status;
    call->t_msg = message != NULL ? strdup(message) : NULL;
    call_post(call);
}

// Completes the calls other threads completed since the last time.  The
// caller holds srv (srv_enter): the last completion may be what frees a
// freed server, which must wait for the caller's srv_leave.
static void
srv_take_posted(rr_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    rr_call *list = srv->posted;
    srv->posted = NULL;
    pthread_mutex_unlock(&srv->mu);

    while (list != NULL) {
        rr_call *call = list;
        list = call->posted_next;
        if (call->t_status == RR_STATUS_OK)
            call_complete(call, RR_STATUS_OK, NULL, NULL, call->t_payload,
                          call->t_len);
        else
            call_complete(call, call->t_status, call->t_msg, NULL, NULL, 0);
    }
}

static void
srv_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void) loop;
    (void) revents;
    rr_server *srv = RR_CONTAINER_OF(w, rr_server, async);

    srv_enter(srv);
    srv_take_posted(srv);
    srv_leave(srv);
}

double
rr_call_remaining(const rr_call *call)
{
    if (call->deadline_at == 0 || call->srv == NULL)
        return INFINITY;
    return call->deadline_at - ev_now(call->srv->loop);
}

bool
rr_call_cancelled(const rr_call *call)
{
    return atomic_load(&call->cancelled);
}

void
rr_call_on_cancel(rr_call *call, rr_cancel_cb cb, void *arg)
{
    call->cancel_cb = cb;
    call->cancel_arg = arg;
    if (atomic_load(&call->cancelled))
        rr__defer_post(call->srv->defer, &call->cancel_later);
}

const uint8_t *
rr_call_metadata(const rr_call *call, const char *key, size_t *len)
{
    if (call->meta == NULL)
        return NULL; // the request carried none
    if (strncmp(key, "rr-", 3) == 0)
        return NULL; // reserved for the protocol (PROTOCOL.md 5.2)
    for (size_t i = 0; i < call->meta->n_metadata; i++) {
        const Rawrpc__V1__MetadataEntry *e = call->meta->metadata[i];
        if (strcmp(e->key, key) == 0) {
            if (len != NULL)
                *len = e->value.len;
            return e->value.data != NULL ? e->value.data : (const uint8_t *) "";
        }
    }
    return NULL;
}

const rr_method *
rr_call_method(const rr_call *call)
{
    return &call->m->m;
}

const char *
rr_call_peer(const rr_call *call)
{
    return call->peer;
}

struct ev_loop *
rr_call_loop(const rr_call *call)
{
    return call->srv != NULL ? call->srv->loop : NULL;
}

void
rr__call_link_child(rr_call *parent, rr__child *child)
{
    child->next = parent->children;
    if (child->next != NULL)
        child->next->pprev = &child->next;
    parent->children = child;
    child->pprev = &parent->children;
}

void
rr__call_unlink_child_slow(rr__child *child)
{
    *child->pprev = child->next;
    if (child->next != NULL)
        child->next->pprev = child->pprev;
    child->next = NULL;
    child->pprev = NULL;
}

// ------------------------------------------------------------ requests

static void sconn_reject(rr_sconn *sc, uint32_t id, rr_status status,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
sconn_reject(rr_sconn *sc, uint32_t id, rr_status status, const char *fmt, ...)
{
    char msg[RR_STATUS_MESSAGE_MAX + 1];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rr__log(RR_LOG_DEBUG, "%s: call %" PRIu32 " rejected: %s: %s",
            sc->c.peer_name, id, rr_status_name(status), msg);
    sconn_respond(sc, id, status, msg, NULL, NULL, 0);
}

// Answers UNIMPLEMENTED for the name a peer sent, quoted as UTF-8 with
// every control or ill-formed byte escaped, and cut between characters.
static void
sconn_reject_method(rr_sconn *sc, uint32_t id, const char *name, size_t len)
{
    char quoted[256];

    rr__utf8_escape(quoted, sizeof(quoted), (const uint8_t *) name, len, true);
    sconn_reject(sc, id, RR_STATUS_UNIMPLEMENTED, "unknown method %s%s", quoted,
                 strlen(quoted) < len ? "..." : "");
}

// Reads the request's metadata and finds its method: true, with call->m
// and h set; false after answering the failure.
static bool
sconn_method(rr_sconn *sc, rr_call *call, const rr_frame *f, rr_request_head *h)
{
    ProtobufCMessage *m;

    if (!rr__request_head_decode(f->body, f->meta_len, h)) {
        // User metadata, or an unusual encoding: protobuf-c decodes it.
        int rv = rr__meta_unpack(&rawrpc__v1__request_meta__descriptor, f,
                                 &call->arena.alloc, &m);
        if (rv == RR_ENOMEM) {
            sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                         "server out of memory");
            return false;
        }
        if (rv != RR_OK) {
            sconn_reject(sc, f->call_id, RR_STATUS_INVALID_ARGUMENT,
                         "request metadata does not parse");
            return false;
        }
        call->meta = (Rawrpc__V1__RequestMeta *) m;
        h->timeout_us = call->meta->timeout_us;
        // The name as the wire has it: protobuf-c's copy stops at a NUL,
        // and "/a.B/C\0anything" must not run /a.B/C.
        if (!rr__request_meta_method(f->body, f->meta_len, &h->method,
                                     &h->method_len)) {
            sconn_reject(sc, f->call_id, RR_STATUS_INVALID_ARGUMENT,
                         "request metadata does not parse");
            return false;
        }
    }
    if ((call->m = method_find(sc->srv, h->method, h->method_len)) == NULL) {
        sconn_reject_method(sc, f->call_id, h->method, h->method_len);
        return false;
    }
    return true;
}

// Unpacks and checks the request; returns the call to dispatch, or NULL
// after answering the failure.
static rr_call *
sconn_prepare(rr_sconn *sc, const rr_frame *f)
{
    rr_server *srv = sc->srv;

    rr_call *call = call_new(srv, sc, f->call_id);
    if (call == NULL) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "server out of memory");
        return NULL;
    }
    rr_request_head h;
    const srv_method *last = srv->last_method;
    if (last != NULL && rr__request_head_match(f->body, f->meta_len, last->name,
                                               last->name_len, &h.timeout_us)) {
        call->m = last; // the same method again, as most clients call
    } else if (!sconn_method(sc, call, f, &h)) {
        goto fail;
    }
    if (call->m->handler == NULL && call->m->tramp == NULL) {
        sconn_reject(sc, f->call_id, RR_STATUS_UNIMPLEMENTED,
                     "unknown method %s", call->m->name);
        goto fail;
    }
    if (h.timeout_us > 0) {
        call->deadline_at = ev_now(srv->loop) + (double) h.timeout_us / 1e6;
        // ev_now is when this wake-up began; the budget may be spent by
        // the time we get here.
        if (ev_time() >= call->deadline_at) {
            sconn_reject(sc, f->call_id, RR_STATUS_DEADLINE_EXCEEDED,
                         "deadline passed before dispatch");
            goto fail;
        }
    }
    int rv =
        rr__unpack(call->m->m.input, &call->arena.alloc,
                   rr__frame_payload_len(f), rr__frame_payload(f), &call->req);
    if (rv == RR_ENOMEM) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "server out of memory");
        goto fail;
    }
    if (rv != RR_OK) {
        sconn_reject(sc, f->call_id, RR_STATUS_INVALID_ARGUMENT,
                     "request does not parse as %s", call->m->m.input->name);
        goto fail;
    }
    return call;

fail:
    call_free(call);
    return NULL;
}

static void
sconn_request(rr_sconn *sc, const rr_frame *f)
{
    rr_server *srv = sc->srv;

    if (f->call_id <= sc->last_id) {
        rr__conn_fail(&sc->c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "call ID %" PRIu32
                      " is not above the last call ID %" PRIu32,
                      f->call_id, sc->last_id);
        return;
    }
    sc->last_id = f->call_id;
    if (sc->peer_done) {
        rr__conn_fail(&sc->c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "REQUEST %" PRIu32 " after the client's GOAWAY",
                      f->call_id);
        return;
    }
    if (sc->goaway_sent)
        return; // crossed our GOAWAY: never executed, never answered
    sc->c.goaway_last = f->call_id;
    if (sc->calls.count >= srv->opts.max_concurrent_calls) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "%zu calls in flight reach the %" PRIu32 "-call limit",
                     sc->calls.count, srv->opts.max_concurrent_calls);
        return;
    }
    if (f->meta_len > srv->opts.max_metadata_size) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "request metadata of %u bytes exceeds the %" PRIu32
                     "-byte limit",
                     (unsigned) f->meta_len, srv->opts.max_metadata_size);
        return;
    }
    rr_call *call = sconn_prepare(sc, f);
    if (call == NULL)
        return;
    if (rr__idmap_put(&sc->calls, call->id, call) != RR_OK) {
        sconn_reject(sc, f->call_id, RR_STATUS_RESOURCE_EXHAUSTED,
                     "server out of memory");
        call_free(call);
        return;
    }
    if (call->deadline_at > 0) {
        ev_timer_set(&call->deadline, call->deadline_at - ev_now(srv->loop),
                     0.);
        ev_timer_start(srv->loop, &call->deadline);
    }
    if (call->m->tramp != NULL)
        call->m->tramp(call, call->req, call->m->fn, call->m->arg);
    else
        call->m->handler(call, call->req, call->m->arg);
}

// The client sends no more REQUESTs (its GOAWAY, or its EOF): answer
// what is in flight, then end the connection gracefully.
static void
sconn_peer_done(rr_sconn *sc)
{
    sc->peer_done = true;
    if (sc->calls.count == 0)
        rr__conn_finish(&sc->c);
}

static void
sconn_on_frame(rr_conn *c, const rr_frame *f)
{
    rr_sconn *sc = RR_CONTAINER_OF(c, rr_sconn, c);
    rr_server *srv = sc->srv;

    srv_enter(srv);
    switch (f->type) {
    case RR_FRAME_REQUEST:
        sconn_request(sc, f);
        break;
    case RR_FRAME_CANCEL: {
        rr_call *call = rr__idmap_get(&sc->calls, f->call_id);
        if (call != NULL) // else: completed already, or crossed
            call_cancel(call, RR_STATUS_CANCELLED, "cancelled by the client");
        break;
    }
    case RR_FRAME_GOAWAY: {
        rr_goaway g;
        rr__goaway_parse(f, &g);
        rr__log(g.code == RR_GOAWAY_NO_ERROR ? RR_LOG_DEBUG : RR_LOG_WARN,
                "%s: GOAWAY %s: %.*s", c->peer_name,
                rr__goaway_code_name(g.code), (int) g.message_len, g.message);
        sconn_peer_done(sc); // its calls finish as usual, then we close
        break;
    }
    default:
        rr__conn_fail(c, RR_GOAWAY_PROTOCOL_ERROR, RR_EPROTO,
                      "a client sent a %s frame", rr__frame_type_name(f->type));
    }
    srv_leave(srv);
}

static void
sconn_on_open(rr_conn *c)
{
    (void) c;
}

// The client shut its write side: it still reads.  Its accepted calls
// get their RESPONSEs (PROTOCOL.md section 6), after a GOAWAY that tells
// it which calls those are.
static void
sconn_on_eof(rr_conn *c)
{
    rr_sconn *sc = RR_CONTAINER_OF(c, rr_sconn, c);
    rr_server *srv = sc->srv;

    srv_enter(srv);
    rr__log(RR_LOG_DEBUG, "%s: half-closed with %zu calls in flight",
            c->peer_name, sc->calls.count);
    if (!sc->goaway_sent) {
        sc->goaway_sent = true;
        c->goaway_last = sc->last_id;
        if (rr__frame_put_goaway(&c->out, sc->last_id, RR_GOAWAY_NO_ERROR,
                                 "client closed its side") == RR_OK)
            rr__conn_queued(c);
    }
    sconn_peer_done(sc);
    srv_leave(srv);
}

static void srv_check_shutdown_done(rr_server *srv);

static void
sconn_on_close(rr_conn *c, int err, const char *why)
{
    rr_sconn *sc = RR_CONTAINER_OF(c, rr_sconn, c);
    rr_server *srv = sc->srv;
    rr_idmap_cursor cur = {0};
    rr_call *call;

    srv_enter(srv);
    rr__log(err == RR_OK ? RR_LOG_DEBUG : RR_LOG_INFO, "%s: closed: %s",
            c->peer_name, why);
    while ((call = rr__idmap_pop(&sc->calls, &cur, NULL)) != NULL) {
        call_detach(call);
        call_cancel(call, RR_STATUS_UNAVAILABLE, why);
    }
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        srv->conns = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    srv->n_conns--;
    srv_check_shutdown_done(srv);
    srv_leave(srv);
}

static void
sconn_on_free(rr_conn *c)
{
    rr_sconn *sc = RR_CONTAINER_OF(c, rr_sconn, c);

    rr__idmap_fini(&sc->calls);
    free(sc);
}

static const rr_conn_ops sconn_ops = {
    .on_open = sconn_on_open,
    .on_eof = sconn_on_eof,
    .on_frame = sconn_on_frame,
    .on_close = sconn_on_close,
    .on_free = sconn_on_free,
};

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
listener_pause(srv_listener *l)
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
    srv_listener *l = RR_CONTAINER_OF(w, srv_listener, pause);
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
srv_shed(rr_server *srv, srv_listener *l, int err, int budget)
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
    if (srv->n_conns >= srv->opts.max_connections || srv->shutting) {
        rr__log(RR_LOG_WARN, "%s: refused: %" PRIu32 " connections open", peer,
                srv->n_conns);
        close(fd);
        return;
    }
    rr_sconn *sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        close(fd);
        return;
    }
    sc->srv = srv;
    rr__idmap_init(&sc->calls);
    sc->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = sc;
    srv->conns = sc;
    srv->n_conns++;

    rr_conn_cfg cfg;
    srv_conn_cfg(srv, &cfg);
    rr__conn_start(&sc->c, srv->loop, fd, false, false, &cfg, &sconn_ops, peer);
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
    srv_listener *l = RR_CONTAINER_OF(w, srv_listener, io);
    rr_server *srv = l->srv;

    srv_enter(srv);
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
    srv_leave(srv);
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
listener_open(rr_server *srv, const rr_addr *a, srv_listener *l, char *why,
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
    if (srv->n_listeners == MAX_LISTENERS)
        return listen_fail(srv, RR_EINVAL, "%.80s: at most %d listeners",
                           address, MAX_LISTENERS);
    if (rr__addr_parse_listen(address, &a, &any, why, sizeof(why)) != RR_OK)
        return listen_fail(srv, RR_EINVAL, "%s", why);
    srv_listener *l = &srv->listeners[srv->n_listeners];
    rv = listener_open(srv, &a, l, why, sizeof(why));
    if (rv == RR_EADDRNOTAVAIL && any) { // ":port" on a machine without IPv6
        rr__addr_any4(&a);
        rv = listener_open(srv, &a, l, why, sizeof(why));
    }
    if (rv != RR_OK)
        return listen_fail(srv, rv, "%.80s: %s", address, why);
    srv->n_listeners++;
    if (!srv->loop_inited) { // the first listener: loop 0 serves from now
        srv->loop_inited = true;
        if (srv->opts.loop_init != NULL)
            srv->opts.loop_init(srv, srv->loop, 0, srv->opts.loop_arg);
    }
    if (srv->loops != NULL && rr__loops_start(srv->loops) != RR_OK) {
        rr__log(RR_LOG_WARN, "listen %s: serving on one loop only", address);
        rr__loops_free(srv->loops);
        srv->loops = NULL;
    }
    if (srv->port == 0 && a.ss.ss_family != AF_UNIX) {
        union {
            struct sockaddr sa;
            struct sockaddr_in in;
            struct sockaddr_in6 in6;
        } u;
        socklen_t len = sizeof(u);
        memset(&u, 0, sizeof(u));
        if (getsockname(l->fd, &u.sa, &len) != 0)
            return RR_OK; // listening all the same; the port is unknown
        srv->port =
            ntohs(u.sa.sa_family == AF_INET ? u.in.sin_port : u.in6.sin6_port);
    }
    return RR_OK;
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
        srv_listener *l = &srv->listeners[i];
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

static void
srv_check_shutdown_done(rr_server *srv)
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

    srv_enter(srv);
    while (srv->conns != NULL)
        rr__conn_close(&srv->conns->c, RR_ETIMEDOUT,
                       "peer did not close after shutdown");
    srv_check_shutdown_done(srv); // also when there was none to close
    srv_leave(srv);
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

// The grace period is over for sc: what still runs is answered
// UNAVAILABLE (PROTOCOL.md 9), then the connection finishes.
static void
sconn_grace_over(rr_sconn *sc)
{
    rr_idmap_cursor cur = {0};
    rr_call *call;

    while (!sc->srv->freed &&
           (call = rr__idmap_pop(&sc->calls, &cur, NULL)) != NULL)
        call_cancel(call, RR_STATUS_UNAVAILABLE,
                    "server shut down: grace period expired");
    rr__conn_finish(&sc->c);
}

static void
srv_grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    rr_server *srv = RR_CONTAINER_OF(w, rr_server, grace);

    srv_enter(srv);
    srv_each_conn(srv, sconn_grace_over);
    if (!srv->freed) { // a cancel callback may have freed it
        ev_timer_set(&srv->linger, LINGER_AFTER_GRACE, 0.);
        ev_timer_start(loop, &srv->linger);
    }
    srv_leave(srv);
}

// A shutdown begins on sc: GOAWAY NO_ERROR naming the last call it will
// answer; a connection still in its handshake just closes.
static void
sconn_goaway(rr_sconn *sc)
{
    if (sc->c.state != RR_CONN_OPEN) {
        rr__conn_close(&sc->c, RR_ECLOSED, "server shutting down");
        return;
    }
    if (!sc->goaway_sent) { // else: a half-close already sent one
        sc->goaway_sent = true;
        sc->c.goaway_last = sc->last_id;
        if (rr__frame_put_goaway(&sc->c.out, sc->last_id, RR_GOAWAY_NO_ERROR,
                                 "server shutting down") == RR_OK)
            rr__conn_queued(&sc->c);
    }
    if (sc->calls.count == 0)
        rr__conn_finish(&sc->c);
}

int
rr_server_shutdown(rr_server *srv, double grace, rr_shutdown_cb cb, void *arg)
{
    if (srv == NULL || srv->shutting)
        return RR_EINVAL;
    srv_enter(srv);
    srv->shutting = true;
    srv->shutdown_cb = cb;
    srv->shutdown_arg = arg;
    srv_close_listeners(srv);

    srv_each_conn(srv, sconn_goaway);
    if (srv->freed) { // by a cancel callback of a closed connection
        srv_leave(srv);
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
    srv_leave(srv);
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

int
rr_server_new(rr_server **out, struct ev_loop *loop, const rr_server_opts *opts)
{
    int rv;

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
    if ((srv->scratch = rr__scratch_get(loop)) == NULL) {
        free(srv);
        return RR_ENOMEM;
    }
    if ((srv->defer = rr__defer_get(loop)) == NULL) {
        rr__scratch_unref(srv->scratch);
        free(srv);
        return RR_ENOMEM;
    }
    if ((rv = srv_reserve_fds(srv)) != RR_OK) {
        rr__scratch_unref(srv->scratch);
        rr__defer_unref(srv->defer);
        free(srv);
        return rv;
    }
    srv->loop = loop;
    srv->emfile_logged = -1e9;
    pthread_mutex_init(&srv->mu, NULL);
    // Before the extra loops, which take descriptors of their own.
    ev_async_init(&srv->async, srv_async_cb);
    ev_async_start(loop, &srv->async);
    ev_unref(loop); // the hand-off alone must not keep the loop running
    if (srv->opts.loops > 1 &&
        (rv = rr__loops_new(&srv->loops, loop, srv->opts.loops - 1, srv,
                            &srv->opts, srv_loops_done, srv)) != RR_OK) {
        ev_ref(loop);
        ev_async_stop(loop, &srv->async);
        pthread_mutex_destroy(&srv->mu);
        close(srv->spare_fd);
        rr__scratch_unref(srv->scratch);
        rr__defer_unref(srv->defer);
        free(srv);
        return rv;
    }
    ev_timer_init(&srv->grace, srv_grace_cb, 0., 0.);
    ev_timer_init(&srv->linger, srv_linger_cb, 0., 0.);
    *out = srv;
    return RR_OK;
}

// Every extra loop finished its part of a shutdown.
static void
srv_loops_done(void *arg)
{
    rr_server *srv = arg;

    srv_enter(srv);
    srv_check_shutdown_done(srv);
    srv_leave(srv);
}

// Frees a freed server once nothing can reach it: no callback of it on
// the stack and no call of it still held by a handler.  Until then a
// freed server is only what its calls need (the method table, the
// mailbox from other threads, the pool), so a call completed after
// rr_server_free, from the loop or from a thread, is answered by nobody
// and just freed.
static void
srv_destroy(rr_server *srv)
{
    if (srv->live != NULL)
        return; // the last call_free comes back here
    ev_ref(srv->loop);
    ev_async_stop(srv->loop, &srv->async);
    rr_call *pooled;
    while ((pooled = pool_get(srv)) != NULL) {
        rr__arena_fini(&pooled->arena);
        free(pooled);
    }
    for (size_t i = 0; i < srv->methods_cap; i++)
        free(srv->methods[i].name);
    free(srv->methods);
    rr__scratch_unref(srv->scratch);
    rr__defer_unref(srv->defer);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}

void
rr_server_free(rr_server *srv)
{
    if (srv == NULL || srv->freed)
        return;
    srv_enter(srv);
    srv->freed = true;
    srv->shutdown_cb = NULL;
    srv_close_listeners(srv);
    rr__loops_free(srv->loops); // joins their threads
    srv->loops = NULL;
    while (srv->conns != NULL)
        rr__conn_close(&srv->conns->c, RR_ECLOSED, "server freed");
    if (srv->loop_inited && srv->opts.loop_fini != NULL)
        srv->opts.loop_fini(srv, srv->loop, 0, srv->opts.loop_arg);
    ev_timer_stop(srv->loop, &srv->grace);
    ev_timer_stop(srv->loop, &srv->linger);
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    srv->spare_fd = -1;
    srv_take_posted(srv); // completed by threads: nothing to answer now
    srv_leave(srv);       // destroys now, or once the last call is completed
}
