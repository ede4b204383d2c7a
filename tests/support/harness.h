// SPDX-License-Identifier: MIT
//
// harness.h -- what the runtime tests share: a private loop with a guard
// timer, a server on 127.0.0.1:0 serving rrtest.Test, a channel to it,
// descriptor counting, and raw-socket peers that speak (or break) the
// protocol byte by byte.

#ifndef RR_TEST_HARNESS_H
#define RR_TEST_HARNESS_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/buf.h"
#include "codec/frame.h"
#include "codec/preface.h"
#include "codec/utf8.h"
#include "rawrpc/rawrpc.h"
#include "testmsg.pb-c.h"

// Method indexes of rrtest.Test, in .proto order.
enum { M_ECHO, M_HOLD, M_FAIL, M_BIG, M_META, M_THREAD, M_RELAY, M_UNSET };

extern const rr_method test_methods[8];

#define MAX_HELD 1100

typedef struct fixture {
    struct ev_loop *loop;
    ev_timer guard;
    bool guard_fired;
    int fds_at_start;
    rr_server *srv;
    rr_channel *ch;
    uint16_t port;
    char target[64];
    rr_handler_cb handlers[8];
    // the Hold method's calls, in arrival order
    rr_call *held[MAX_HELD];
    const Rrtest__Echo *held_req[MAX_HELD];
    size_t n_held;
    int cancels; // cancel callbacks run
    void *user;  // for a test's own state
} fixture;

// One call's outcome, filled by result_cb.
typedef struct outcome {
    int runs; // how many times the callback ran (must end at 1)
    rr_status status;
    char message[160];
    char text[64];
    size_t data_len;
} outcome;

void result_cb(const rr_result *res, void *arg);

// fx_setup: loop, guard (seconds), server with opts (NULL: defaults) and
// the standard handlers, channel with copts.  Returns 0 or -1.
int fx_setup(fixture *fx, double guard, const rr_server_opts *sopts,
             const rr_channel_opts *copts);
// fx_group_setup and fx_group_teardown are cmocka setup and teardown
// functions giving each test a fixture with a 30 s guard and defaults.
int fx_group_setup(void **state);
int fx_group_teardown(void **state);

// fx_restart frees the server and channel and makes new ones with the
// fixture's current handlers table and these options.
int fx_restart(fixture *fx, const rr_server_opts *sopts,
               const rr_channel_opts *copts);
// fx_teardown frees everything and checks the descriptor count.
void fx_teardown(fixture *fx);

// fx_run_until runs the loop until *flag is true; fails the test if the
// guard fires first.
void fx_run_until(fixture *fx, const bool *flag);
// fx_run_until_runs runs until o->runs >= 1.
void fx_wait(fixture *fx, outcome *o);
// fx_run_for runs the loop for a while of loop time (timers, not sleep).
void fx_run_for(fixture *fx, double seconds);

// fx_flag_cb, a timer's callback, sets the bool at w->data: a test's own
// bound on how long something may take ("it hung").
void fx_flag_cb(struct ev_loop *loop, ev_timer *w, int revents);

// fx_call sends test_methods[m] with text; returns rr_channel_call's rv.
int fx_call(fixture *fx, int m, const char *text, const rr_call_opts *o,
            outcome *out);

int fd_count(void);

// ------------------------------------------------------------ raw peers

typedef struct rawpeer {
    fixture *fx;
    int fd;
    ev_io io;
    rr_buf in;
    bool eof;
} rawpeer;

// rawpeer_connect opens a plain socket to the fixture's server.
void rawpeer_connect(rawpeer *p, fixture *fx);
// rawpeer_listen opens a non-blocking listener on 127.0.0.1:0 (a raw
// server for a channel) and sets *port; rawpeer_accept runs the loop
// until a connection arrives on it and takes it as p.
int rawpeer_listen(uint16_t *port);
void rawpeer_accept(rawpeer *p, fixture *fx, int listen_fd);
// rawpeer_send writes all of buf (blocking is fine on loopback).
void rawpeer_send(rawpeer *p, const void *buf, size_t len);
// rawpeer_handshake sends a valid preface and SETTINGS.
void rawpeer_handshake(rawpeer *p);
// rawpeer_frame runs the loop until a whole frame is there (returns true
// and fills f, valid until the next call) or EOF (false).  Skips the
// server's preface automatically.
bool rawpeer_frame(rawpeer *p, rr_frame *f);
// rawpeer_wait_eof runs the loop until the server closes.
void rawpeer_wait_eof(rawpeer *p);
void rawpeer_close(rawpeer *p);

// rawpeer_request sends a REQUEST for method with an Echo of text and a
// deadline budget of timeout_us (0: none).
void rawpeer_request(rawpeer *p, uint32_t id, const char *method,
                     const char *text, uint64_t timeout_us);
// rawpeer_request_meta sends a REQUEST whose metadata is the meta_len
// bytes at meta, exactly, and whose payload is an Echo of text.
void rawpeer_request_meta(rawpeer *p, uint32_t id, const uint8_t *meta,
                          size_t meta_len, const char *text);
// rawpeer_response reads frames (skipping SETTINGS, PING and PONG) until
// a RESPONSE and returns its status; *id and msg get its call ID and
// message.
rr_status rawpeer_response(rawpeer *p, uint32_t *id, char *msg, size_t msgsz);
// rawpeer_expect_goaway reads until a GOAWAY, checks its code and (when
// not NULL) its message, then waits for EOF.
void rawpeer_expect_goaway(rawpeer *p, uint32_t code, const char *msg);
// One RESPONSE as the raw peer read it.
typedef struct rawpeer_reply_t {
    uint32_t id;
    uint32_t status;
    uint16_t meta_len;
    char message[RR_STATUS_MESSAGE_MAX + 8];
    size_t message_len;
    size_t data_len; // of the Echo payload, when OK
} rawpeer_reply_t;

// rawpeer_reply reads the next RESPONSE (skipping SETTINGS, PING, PONG)
// into *r, unpacking an OK payload as an Echo; false on EOF or a GOAWAY,
// which is then parsed into *goaway when that is not NULL (*r is then
// all zero).
bool rawpeer_reply(rawpeer *p, rawpeer_reply_t *r, rr_goaway *goaway);
// rawpeer_connect_with connects and handshakes with these SETTINGS.
void rawpeer_connect_with(rawpeer *p, fixture *fx, const rr_settings *s);
// rawpeer_send_goaway sends a GOAWAY.
void rawpeer_send_goaway(rawpeer *p, uint32_t last, uint32_t code,
                         const char *msg);

// fx_expect_service makes an Echo call on the fixture's channel and
// checks it works.
void fx_expect_service(fixture *fx);

#endif // RR_TEST_HARNESS_H
