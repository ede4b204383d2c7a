// SPDX-License-Identifier: MIT
//
// peer.h -- what the peer comparators (nng, ZeroMQ, Cap'n Proto) share so
// that their numbers mean what grpc-bench's and rawrpc-bench's do: the same
// command line, the same warm-up and measured phases, and the same JSON
// line on stdout.  Only the transport differs from one to the other.
//
// A load generator fills a peer_opts with peer_parse, keeps a peer_meter,
// calls peer_meter_tick (or begin/end from its own timers) to move it from
// warm-up to measuring to done, peer_meter_record for each reply, and
// peer_meter_report once every call in flight has come back.  A
// peer_meter is not locked: a load generator whose replies arrive on
// several threads (nng) serializes its calls to it.

#ifndef RRB_PEER_H
#define RRB_PEER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct peer_opts {
    unsigned port;
    int conns, inflight; // connections, calls in flight on each
    size_t payload;      // bytes in each request's payload
    double duration, warmup;
    int server_pid;
    const char *scenario;
} peer_opts;

// peer_parse reads grpc-bench's options (--system is accepted and
// ignored); false on a bad command line or a missing --port.
bool peer_parse(int argc, char **argv, peer_opts *o);

typedef enum { PEER_WARMUP, PEER_MEASURE, PEER_DONE } peer_phase;

typedef struct peer_meter {
    peer_phase phase;
    int server_pid;
    uint64_t t_measure, t_end; // when the phases are due to change, ns
    uint64_t t0, t1;           // when they did
    double cli0, srv0, cli, srv;
    uint64_t calls, errors;
    hist h;
} peer_meter;

uint64_t peer_now_ns(void);

// peer_request_init makes *req the EchoRequest every call sends: payload
// zero bytes (req->payload.data is NULL when out of memory; free it at
// the end).  Returns its packed size.
struct Rawrpc__Echo__EchoRequest;
size_t peer_request_init(struct Rawrpc__Echo__EchoRequest *req, size_t payload);

// peer_reply_ok unpacks len bytes at p as an EchoReply (protobuf-c, as the
// load generators' replies are) and says whether it carries a payload of
// the asked size.
bool peer_reply_ok(const void *p, size_t len, size_t payload);

// peer_block_stop_signals blocks SIGTERM and SIGINT in the calling thread,
// and so in the threads a library starts after it, and fills *set with
// them (for sigwait or a signalfd).
void peer_block_stop_signals(sigset_t *set);

// peer_meter_init starts the warm-up now; the phase deadlines follow
// from o's warm-up and duration.
void peer_meter_init(peer_meter *m, const peer_opts *o);
// peer_meter_begin and peer_meter_end move the meter to measuring and to
// done, sampling both processes' CPU time at that moment.
void peer_meter_begin(peer_meter *m);
void peer_meter_end(peer_meter *m);
// peer_meter_tick makes the phase changes that are due at now and returns
// the phase.
peer_phase peer_meter_tick(peer_meter *m, uint64_t now);
// peer_meter_next_ms: milliseconds until the next phase change is due (0
// when it is overdue, -1 when done), for a poll timeout.
int peer_meter_next_ms(const peer_meter *m, uint64_t now);
// peer_meter_record counts one reply to a call issued at start_ns, when
// measuring.
void peer_meter_record(peer_meter *m, uint64_t start_ns, bool ok);
// peer_meter_report prints the JSON line grpc-bench prints, as system.
void peer_meter_report(const peer_meter *m, const char *system,
                       const peer_opts *o);

// peer_port_arg: the servers' command line, "[--port P]"; the port (0,
// any free one, when not given) or -1 on a bad command line.
static inline long
peer_port_arg(int argc, char **argv)
{
    if (argc == 1)
        return 0;
    if (argc != 3 || strcmp(argv[1], "--port") != 0)
        return -1;
    char *end;
    long port = strtol(argv[2], &end, 10);
    return *end == '\0' && port >= 0 && port <= 65535 ? port : -1;
}

#ifdef __cplusplus
}
#endif

#endif // RRB_PEER_H
