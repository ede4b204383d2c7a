// SPDX-License-Identifier: MIT
//
// rawrpc.h -- the whole public API of rawrpc.
//
// rawrpc carries length-prefixed protobuf-c messages over plain TCP on a
// libev loop; docs/PROTOCOL.md specifies the bytes and docs/GUIDE.md shows
// how to use this API.  The header is sectioned like uv.h: version, errors,
// status codes, logging, methods, server, calls, channel.  Every function
// documents its contract in a paragraph that starts with its name.
//
// Threads: a server or channel belongs to the loop it was made with and is
// used only from that loop's thread; the one exception is
// rr_call_reply_from_thread / rr_call_fail_from_thread.  Different loops on
// different threads are independent.  A server with several loops runs
// each call's handler on the call's own loop, rr_call_loop.
//
// Callbacks: a function that returns an error never runs its callback.  One
// that returns RR_OK runs it exactly once, from the loop, never before the
// function has returned.

#ifndef RAWRPC_H
#define RAWRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RAWRPC_STATIC) || !defined(__GNUC__)
#define RR_API
#else
#define RR_API __attribute__((visibility("default")))
#endif

// ---------------------------------------------------------------- version

#define RAWRPC_VERSION_MAJOR  0
#define RAWRPC_VERSION_MINOR  2
#define RAWRPC_VERSION_PATCH  0
#define RAWRPC_VERSION_STRING "0.2.0"

// The wire protocol version this library speaks (docs/PROTOCOL.md).
#define RAWRPC_PROTOCOL_VERSION 1

// rr_version returns the library's version as "MAJOR.MINOR.PATCH".  It may
// differ from RAWRPC_VERSION_STRING when a program was compiled against
// other headers than the library it runs with.
RR_API const char *rr_version(void);

// ----------------------------------------------------------------- errors

// Every function that can fail returns 0 (RR_OK) or one of these negative
// codes, so a signed size can carry a count or an error.  Raw errno values
// never leak: a reset and a broken pipe are both RR_ECLOSED.
typedef enum rr_err {
    RR_OK = 0,
    RR_ENOMEM = -1,    // out of memory
    RR_EINVAL = -2,    // invalid argument (a programming error)
    RR_ECLOSED = -3,   // the connection is closed, reset or broken
    RR_ETIMEDOUT = -4, // a deadline passed, or the heartbeat was lost
    RR_EPROTO = -5,    // the peer broke the protocol
    RR_EMSGSIZE = -6,  // a frame or message exceeds a size limit
    RR_ENOMETHOD = -7, // no such method
    RR_ENOBUFS = -8,   // an output buffer reached its cap
    RR_EPREFACE = -9,  // the peer is not speaking rawrpc
    RR_EVERSION = -10, // the peer's protocol version is not supported

    // What a listener or rr_server_new meets in the system.
    RR_EADDRINUSE = -11,    // the address is taken: a server listens there
    RR_EACCES = -12,        // permission denied (a port, a directory)
    RR_EMFILE = -13,        // no file descriptor left (RLIMIT_NOFILE)
    RR_EADDRNOTAVAIL = -14, // the address is not this machine's (or no IPv6)
} rr_err;

// rr_strerror returns a static English description of err, or of an
// unknown code "unknown error".  It never returns NULL.
RR_API const char *rr_strerror(int err);

// rr_last_error returns a sentence on why the last failing rawrpc call of
// this thread that documents it failed: an address that does not parse
// (rr_server_listen, rr_channel_new), a bind that fails, rr_server_new
// out of descriptors or given bad options.  Like errno it is written on
// failure and never cleared, so read it right after an error return.  ""
// before any failure.  The text belongs to the thread and stays valid
// until the thread exits; it never returns NULL.
RR_API const char *rr_last_error(void);

// ----------------------------------------------------------- status codes

// The status of a finished call: gRPC's canonical codes with gRPC's
// numbers, so they mean what gRPC users already know (docs/PROTOCOL.md,
// section 5.3).
typedef enum rr_status {
    RR_STATUS_OK = 0,
    RR_STATUS_CANCELLED = 1,
    RR_STATUS_UNKNOWN = 2,
    RR_STATUS_INVALID_ARGUMENT = 3,
    RR_STATUS_DEADLINE_EXCEEDED = 4,
    RR_STATUS_NOT_FOUND = 5,
    RR_STATUS_ALREADY_EXISTS = 6,
    RR_STATUS_PERMISSION_DENIED = 7,
    RR_STATUS_RESOURCE_EXHAUSTED = 8,
    RR_STATUS_FAILED_PRECONDITION = 9,
    RR_STATUS_ABORTED = 10,
    RR_STATUS_OUT_OF_RANGE = 11,
    RR_STATUS_UNIMPLEMENTED = 12,
    RR_STATUS_INTERNAL = 13,
    RR_STATUS_UNAVAILABLE = 14,
    RR_STATUS_DATA_LOSS = 15,
    RR_STATUS_UNAUTHENTICATED = 16,
} rr_status;

#define RR_STATUS_MAX RR_STATUS_UNAUTHENTICATED

// rr_status_name returns the canonical upper-case name of a status code,
// "NOT_FOUND" for 5; codes above RR_STATUS_MAX are reported as "UNKNOWN",
// as the protocol says they must be treated.  It never returns NULL.
RR_API const char *rr_status_name(uint32_t status);

// ---------------------------------------------------------------- logging

typedef enum rr_log_level {
    RR_LOG_DEBUG = 0,
    RR_LOG_INFO = 1,
    RR_LOG_WARN = 2,
    RR_LOG_ERROR = 3,
    RR_LOG_OFF = 4,
} rr_log_level;

typedef void (*rr_log_cb)(rr_log_level level, const char *msg, void *arg);

// rr_log_set routes the library's log lines to cb, which gets one line
// without a trailing newline; lines below min are not even formatted.  The
// default writes RR_LOG_WARN and up to stderr with a timestamp, or from
// the level the environment variable RAWRPC_LOG names ("debug", "info",
// "warn", "error", "off"), until rr_log_set sets one.  At RR_LOG_DEBUG
// the server and the channel log one line per call: method, peer or
// target, status and duration.  cb NULL restores the default.  Call it
// before starting loops on other threads.
RR_API void rr_log_set(rr_log_cb cb, void *arg, rr_log_level min);

// rr_log_level_parse turns "debug", "info", "warn", "error" or "off" into
// *out.  Returns RR_OK or RR_EINVAL.
RR_API int rr_log_level_parse(const char *name, rr_log_level *out);

// ---------------------------------------------------------------- methods

// One RPC method as both sides see it.  Generated code defines one constant
// per method; by hand: {"/pkg.Service/Method", &in__descriptor,
// &out__descriptor}.
typedef struct rr_method {
    const char *full_name;                    // "/pkg.Service/Method"
    const ProtobufCMessageDescriptor *input;  // request message
    const ProtobufCMessageDescriptor *output; // reply message
} rr_method;

// One user metadata pair.  Keys are case-sensitive; "rr-" is reserved.
typedef struct rr_metadata {
    const char *key;
    const uint8_t *value;
    size_t value_len;
} rr_metadata;

// ----------------------------------------------------------------- server

typedef struct rr_server rr_server;
typedef struct rr_call rr_call;

// A per-loop hook of a server: loop is one of the loops serving it,
// index its number (0 is the loop the server was made with, 1 to
// loops - 1 the extra ones), srv the server rr_server_new gave you (on an
// extra loop's thread, for telling servers apart only: call nothing on
// it there).  See rr_server_opts.loop_init.
typedef void (*rr_loop_cb)(rr_server *srv, struct ev_loop *loop, unsigned index,
                           void *arg);

// ------------------------------------------------------- options and ABI
//
// Every options struct below starts with struct_size, which
// rr_X_opts_init sets to sizeof the struct as the program is compiled (0
// means the first layout, so a zeroed rr_call_opts is the defaults).  New
// options are only ever appended, and the library reads struct_size bytes
// over its own defaults: a program compiled against an older header keeps
// working with a newer librawrpc.so.0 and gets the defaults of options it
// does not know.  A program compiled against a newer header than the
// library it runs with gets RR_EINVAL (rr_last_error says why).  Always
// fill options through rr_X_opts_init, or zero them and set struct_size.

// Server options; rr_server_opts_init sets every default named here.
typedef struct rr_server_opts {
    size_t struct_size;            // sizeof(rr_server_opts), set by _init
    int backlog;                   // listen(2) backlog: 511
    uint32_t max_connections;      // accepted and open at once: 10000
    uint32_t max_concurrent_calls; // per connection: 1024
    uint32_t max_frame_size;       // largest frame body accepted: 4 MiB
    uint32_t max_metadata_size;    // request metadata bytes: 8192
    double handshake_timeout;      // seconds to get preface+SETTINGS: 10
    double heartbeat_interval;     // idle seconds before a PING: 30
    double heartbeat_timeout;      // silent seconds before death: 20
    size_t out_high_water;         // stop reading a peer above: 4 MiB
    size_t out_low_water;          // ... resume below: 1 MiB
    double grace_period;           // rr_server_shutdown default: 10 s
    bool tcp_keepalive;            // SO_KEEPALIVE with the heartbeat: false
    // Event loops serving connections: 1 (0 means 1).  With N > 1 the
    // server starts N - 1 threads, each running a loop of its own; the
    // caller's loop accepts and hands connections out round-robin, and a
    // connection and its calls stay on one loop.  Handlers then run on
    // N threads at once and must be thread-safe; add every service before
    // rr_server_listen.  max_connections applies to each loop.  See the
    // guide's "Threads" section.
    unsigned loops;
    // Per-loop set-up, for state a handler reaches through rr_call_loop
    // (a channel or a cache per loop, say): NULL, NULL, NULL.  loop_init
    // runs once for each loop, on that loop's own thread, before the loop
    // serves a connection: loop 0 inside the first rr_server_listen that
    // succeeds, the extra loops as their threads start.  loop_fini runs
    // once for each loop whose loop_init ran, on the same thread, after
    // that loop's connections are closed, inside rr_server_free (the
    // extra loops' first, loop 0's last).  Both get loop_arg.
    rr_loop_cb loop_init;
    rr_loop_cb loop_fini;
    void *loop_arg;
} rr_server_opts;

#define RR_MAX_LOOPS 256

RR_API void rr_server_opts_init(rr_server_opts *opts);

// rr_server_new makes a server on loop; opts NULL means the defaults.
// With loops > 1 it makes the extra loops too (their threads start at
// the first rr_server_listen).  It holds one descriptor in reserve, to
// shed connections with when accept runs out (rr_server_listen), and
// checks that a descriptor is free for the loop's wake-up before libev
// needs one, so running out of descriptors is an error here, never an
// abort inside libev.  Returns RR_OK and sets *out; or RR_EINVAL (an
// option out of range, named by rr_last_error), RR_EMFILE (no descriptor
// left: RLIMIT_NOFILE) or RR_ENOMEM, and then *out is NULL and nothing
// is kept.
RR_API int rr_server_new(rr_server **out, struct ev_loop *loop,
                         const rr_server_opts *opts);

// A handler gets the call and its unpacked request, which stays valid
// until the call is completed.  It must complete the call exactly once,
// now or later, with rr_call_reply or rr_call_fail (or their _from_thread
// forms), even after the call was cancelled; that completion frees the
// call.  Cancellation and deadlines never complete a call themselves:
// they answer the client and tell the handler, so whoever holds the call
// completes it, and the first answer to reach the client (reply, failure,
// CANCELLED, DEADLINE_EXCEEDED) is the one that counts.  The first
// completion claims the call, whichever thread makes it; a call a worker
// has completed gets no cancel callback any more.  A call handed to a
// worker should be completed by that worker: its cancel callback may
// tell the worker, but completing the call there too races with it.  A
// second completion is a bug in the program: rawrpc reports it on stderr
// when it can and, in a build without NDEBUG, aborts; otherwise it is
// ignored.
typedef void (*rr_handler_cb)(rr_call *call, const ProtobufCMessage *req,
                              void *arg);

// rr_server_add_service registers svc's methods, dispatched by full name.
// handlers[i] serves svc->methods[i]; a NULL entry answers UNIMPLEMENTED.
// The handlers array is copied; the descriptor must outlive the server.
// A server with more than one loop shares one method table between its
// loops' threads, frozen at the first rr_server_listen: add its services
// before that.  With one loop they may be added at any time.  Returns
// RR_OK, RR_EINVAL if a method is already registered (or the table is
// frozen; rr_last_error says so), or RR_ENOMEM.
RR_API int rr_server_add_service(rr_server *srv,
                                 const ProtobufCServiceDescriptor *svc,
                                 const rr_handler_cb *handlers, void *arg);

// rr_server_enable_reflection serves grpc.reflection.v1's
// ServerReflection service (unary until rawrpc streams; same messages):
// the services srv serves, and the .proto file descriptors the generated
// register functions gave it, for a file name or a symbol, with what
// they import.  The `rawrpc` command-line tool uses it.  Errors as
// rr_server_add_service.
RR_API int rr_server_enable_reflection(rr_server *srv);

// rr_server_listen binds and listens on address, one of
//   "host:port"   an IPv4 address, or a host name, resolved here, once,
//                 blocking, to its first address (a numeric address
//                 avoids the wait);
//   "[v6]:port"   that IPv6 address only; but "[::]:port" is every
//                 interface, dual-stack (IPV6_V6ONLY off): IPv4 clients
//                 connect too, and rr_call_peer names them as IPv4;
//   ":port"       every interface: "[::]:port" dual-stack, or
//                 "0.0.0.0:port" on a machine without IPv6;
//   "unix:/path"  a Unix socket.  A socket file that nobody accepts on
//                 (connect is refused: its server died, kill -9 say) is
//                 replaced; a live socket, or a path that is not a
//                 socket, is refused with RR_EADDRINUSE and left alone.
//                 rr_server_free unlinks the socket if it is still the
//                 one bound.
// Port 0 lets the kernel choose (rr_server_port).  It may be called up to
// 8 times; the first success runs the loop_init hook for loop 0 and
// starts the extra loops.  Returns RR_OK, or RR_EINVAL (an address that
// does not parse or resolve, too many listeners, a server shutting
// down), RR_EADDRINUSE, RR_EACCES, RR_EADDRNOTAVAIL (not this machine's
// address, or no such directory), RR_EMFILE or RR_ENOMEM from the
// system, and RR_ECLOSED for any other failure of socket, bind or
// listen; then rr_server_last_error and rr_last_error say why (so does
// the log) and nothing is left open.  A loop_init hook that frees the
// server makes it return RR_ECLOSED (the server is gone).
//
// Out of descriptors when a client connects (EMFILE, ENFILE), the server
// accepts the clients waiting into its reserve descriptor and closes them
// at once, so they fail fast instead of hanging in the backlog, and the
// listener then pauses for 100 ms before accepting again: it never spins
// the loop.  This is logged at most once a second.  Connections already
// open are not affected.
RR_API int rr_server_listen(rr_server *srv, const char *address);

// rr_server_last_error returns why the latest rr_server_listen on srv
// failed, as one sentence naming the address and the cause ("listen
// 127.0.0.1:80: bind: Permission denied"), or "" if it succeeded or none
// was made.  The text stays valid until the next rr_server_listen or
// rr_server_free.
RR_API const char *rr_server_last_error(const rr_server *srv);

// rr_server_port returns the TCP port of the first listener, as bound (so
// the kernel's choice for port 0), or 0 if there is none.
RR_API uint16_t rr_server_port(const rr_server *srv);

typedef void (*rr_shutdown_cb)(rr_server *srv, void *arg);

// rr_server_shutdown stops accepting, sends GOAWAY to every connection and
// lets the calls in flight finish for at most grace seconds (< 0: the
// option's default); then it cancels what remains, answering those calls
// UNAVAILABLE.  Each connection is
// closed cleanly after its last response.  cb runs once all are closed,
// unless the server is freed first (then it never runs).
// Returns RR_OK, or RR_EINVAL if a shutdown is already under way.
RR_API int rr_server_shutdown(rr_server *srv, double grace, rr_shutdown_cb cb,
                              void *arg);

// rr_server_free closes every connection at once and frees the server.
// Calls in flight are cancelled (their cancel callbacks run inside it,
// also those waiting for the next iteration); their handlers must still
// complete them, which then only frees them: what those calls need of
// the server stays until the last one is completed.  Such a call belongs
// to no loop any more (an extra loop is gone with the server): complete
// it from any thread, with any of the four functions; rr_call_loop is
// NULL and a new rr_call_on_cancel never runs.  Calls already completed
// from threads are freed here.  Safe inside a handler or any callback of
// the server.  NULL is a no-op.
RR_API void rr_server_free(rr_server *srv);

// ------------------------------------------------------------------ calls

// rr_call_reply completes call with OK and reply, which is packed before
// the function returns.  After a cancel or deadline the reply is dropped
// and the call just freed.  Returns RR_OK (call is gone), or RR_EINVAL
// for a reply of the wrong type (then the client gets INTERNAL and the
// call is gone all the same).
RR_API int rr_call_reply(rr_call *call, const ProtobufCMessage *reply);

// rr_call_fail completes call with status (not OK) and message (may be
// NULL).  The call is gone afterwards.  The message is sent as UTF-8:
// ill-formed bytes escaped as "\xHH", at most 1024 bytes (cut between
// characters), shortened further or dropped to fit the client's
// MAX_METADATA_SIZE; the status itself always reaches the client.
RR_API void rr_call_fail(rr_call *call, rr_status status, const char *message);

// rr_call_reply_from_thread and rr_call_fail_from_thread may be called
// from any thread: the reply is packed on the calling thread, then handed
// to the loop (ev_async), which completes the call.  The call must not be
// touched after either returns.
RR_API void rr_call_reply_from_thread(rr_call *call,
                                      const ProtobufCMessage *reply);
RR_API void rr_call_fail_from_thread(rr_call *call, rr_status status,
                                     const char *message);

// rr_call_remaining returns the seconds left before the call's deadline
// (negative once passed), or INFINITY if it has none.
RR_API double rr_call_remaining(const rr_call *call);

// rr_call_cancelled tells whether the client cancelled the call, its
// deadline passed, or its connection closed.  Safe from any thread.
RR_API bool rr_call_cancelled(const rr_call *call);

typedef void (*rr_cancel_cb)(rr_call *call, void *arg);

// rr_call_on_cancel sets a callback run once, from the loop, when the call
// is cancelled by its client, its deadline, its connection closing, the
// grace period's end or rr_server_free (those last two run it inside
// them).  On a call already cancelled it runs from the loop's next
// iteration, never inside rr_call_on_cancel.  The callback may complete
// the call (it is the usual place to stop a timer and fail the call);
// otherwise the handler must still complete it.  A call completed before
// its callback ran never sees it.  Loop thread only.
RR_API void rr_call_on_cancel(rr_call *call, rr_cancel_cb cb, void *arg);

// rr_call_metadata finds the request metadata value of key; returns NULL
// if absent, and for every key starting with the reserved "rr-".  The
// value lives as long as the call.
RR_API const uint8_t *rr_call_metadata(const rr_call *call, const char *key,
                                       size_t *len);

// rr_call_method returns the method being called.
RR_API const rr_method *rr_call_method(const rr_call *call);

// rr_call_peer returns the client's address, "127.0.0.1:40112", valid
// until the call completes, also after the client has gone.
RR_API const char *rr_call_peer(const rr_call *call);

// rr_call_loop returns the loop the call's connection lives on, the one
// its handler runs on: with rr_server_opts.loops > 1 one of the server's
// loops, not necessarily yours.  Timers, channels and child calls
// (rr_call_opts.parent) of the handler belong on this loop.  NULL once
// the server has been freed.
RR_API struct ev_loop *rr_call_loop(const rr_call *call);

// ---------------------------------------------------------------- channel

typedef struct rr_channel rr_channel;

typedef struct rr_channel_opts {
    size_t struct_size;        // sizeof(rr_channel_opts), set by _init
    double connect_timeout;    // seconds per connect attempt: 20
    double backoff_initial;    // first reconnect delay: 1 s
    double backoff_multiplier; // growth per failure: 1.6
    double backoff_jitter;     // +/- share of the delay: 0.2
    double backoff_max;        // cap: 120 s
    double default_timeout;    // per call when none given; 0 = none: 0
    uint32_t max_frame_size;   // largest response body accepted: 4 MiB
    double heartbeat_interval; // idle seconds before a PING: 30
    double heartbeat_timeout;  // silent seconds before death: 20
    size_t max_metadata_size;  // request metadata budget, bytes: 8192
    bool tcp_keepalive;        // SO_KEEPALIVE with the heartbeat: false
} rr_channel_opts;

RR_API void rr_channel_opts_init(rr_channel_opts *opts);

// rr_channel_new makes a channel to target ("host:port", "[v6]:port" or
// "unix:/path") on loop.  Nothing is connected until the first call.
// A host name is resolved here, once, blocking; pass a numeric address to
// avoid that.  Returns RR_OK, RR_EINVAL or RR_ENOMEM.
RR_API int rr_channel_new(rr_channel **out, struct ev_loop *loop,
                          const char *target, const rr_channel_opts *opts);

// rr_channel_free completes every pending call, each callback run before
// it returns: a call whose outcome was already decided (its callback not
// yet run) with that outcome, every other with UNAVAILABLE ("channel
// freed").  Then it closes the connections and frees the channel.  Safe
// inside any callback of this channel (a result's, a deadline's, a
// cancel's, a lost connection's, a failed connect's, a parent's cancel);
// nothing of the channel runs afterwards, and its callbacks may not start
// calls on it (RR_EINVAL).  NULL is a no-op.
RR_API void rr_channel_free(rr_channel *ch);

// Options of one call; zeroed means the defaults.
typedef struct rr_call_opts {
    size_t struct_size;          // sizeof(rr_call_opts), or 0
    double timeout;              // seconds; 0: the channel's default
    const rr_metadata *metadata; // n_metadata pairs sent with the call
    size_t n_metadata;
    bool wait_for_ready; // queue while disconnected (else fail)
    rr_call *parent;     // a server call: inherit its deadline
                         // and its cancellation
} rr_call_opts;

// What a call came to.  reply is non-NULL only when status is OK, and is
// owned by rawrpc until the callback returns.
typedef struct rr_result {
    rr_status status;
    const char *message; // "" when OK; never NULL
    const ProtobufCMessage *reply;
    // rr_channel_call_raw's reply, not unpacked: reply_len bytes, valid
    // until the callback returns (NULL and 0 for every other call).
    const uint8_t *reply_data;
    size_t reply_len;
} rr_result;

typedef void (*rr_result_cb)(const rr_result *res, void *arg);

// rr_channel_call_raw calls method by its full name ("/pkg.Service/
// Method") with len bytes of a request packed already, for a program
// without the generated code (the `rawrpc` command-line caller: its
// messages come from descriptors at run time).  The reply is not
// unpacked: on OK, res->reply is NULL and res->reply_data and
// res->reply_len hold its bytes.  Everything else is as rr_channel_call.
RR_API int rr_channel_call_raw(rr_channel *ch, const char *method,
                               const uint8_t *req, size_t len,
                               const struct rr_call_opts *opts, rr_result_cb cb,
                               void *arg, uint64_t *token);

// rr_channel_call starts a call of method with req, which is packed
// before the function returns (the caller may free it at once).  *token,
// if not NULL, receives a number for rr_channel_cancel, unique for the
// channel's life.
//
// Returns RR_OK, RR_EINVAL (bad arguments; metadata with an empty key, a
// key starting with the reserved "rr-", or over max_metadata_size) or
// RR_ENOMEM; on an error cb never runs.  After RR_OK cb runs exactly
// once, from the loop, never before this function has returned -- also
// when the call fails at once: the connect refused inside this call, the
// channel backing off (without wait_for_ready), a deadline or a parent
// call already over, a request over the server's MAX_FRAME_SIZE or
// metadata over its MAX_METADATA_SIZE (RESOURCE_EXHAUSTED; the request
// is not sent).  Such outcomes are delivered from the loop's next
// iteration; a reply is delivered as it is read.
//
// Calls wait in the channel's queue while it connects, while the server's
// MAX_CONCURRENT_CALLS are in flight, and while 4 MiB of requests wait to
// be written to the connection; they go, in order, as room comes (down to
// 1 MiB for the output).  Nothing but its deadline limits how long a call
// waits there.
RR_API int rr_channel_call(rr_channel *ch, const rr_method *method,
                           const ProtobufCMessage *req,
                           const rr_call_opts *opts, rr_result_cb cb, void *arg,
                           uint64_t *token);

// rr_channel_cancel cancels the pending call token in constant time: its
// callback runs with CANCELLED from the loop (never inside this
// function), and a CANCEL goes to the server if the call was sent.
// Returns RR_OK, or RR_EINVAL when no call has that token, or its
// outcome is already decided.
RR_API int rr_channel_cancel(rr_channel *ch, uint64_t token);

// rr_channel_call_sync makes the call and runs the channel's loop until it
// completes; for programs with no loop of their own.  Returns the status;
// on OK *reply is the reply, to be freed with
// protobuf_c_message_free_unpacked(*reply, NULL).  A call that could not
// start returns RR_STATUS_INVALID_ARGUMENT for bad arguments (as
// rr_channel_call's RR_EINVAL; also ch NULL) and
// RR_STATUS_RESOURCE_EXHAUSTED when out of memory.  Called from inside a
// callback of the same loop it refuses, returning
// RR_STATUS_FAILED_PRECONDITION without calling.  If message is not NULL,
// every return leaves there a malloc'd copy of the status message ("" for
// OK; free it), NULL only when even that copy could not be allocated.
RR_API rr_status rr_channel_call_sync(rr_channel *ch, const rr_method *method,
                                      const ProtobufCMessage *req,
                                      const rr_call_opts *opts,
                                      ProtobufCMessage **reply, char **message);

// rr_channel_connected tells whether the channel's connection has
// completed its handshake.
RR_API bool rr_channel_connected(const rr_channel *ch);

#ifdef __cplusplus
}
#endif

#endif // RAWRPC_H
