// SPDX-License-Identifier: MIT
//
// testing.h -- an in-process kit for testing a service built with rawrpc:
// a private loop, a server on 127.0.0.1 with a kernel-chosen port, and a
// channel to it, made in one call and freed in one.  Use it with cmocka
// (or anything else) and rawrpc_add_test() from CMake, which runs the test
// under valgrind:
//
//     rr_testkit *kit;
//     rr_testkit_new(&kit, NULL, NULL);
//     my_service_register(rr_testkit_server(kit));
//     ... rr_my__svc__method__sync(rr_testkit_channel(kit), &req, ...) ...
//     assert_int_equal(rr_testkit_free(kit), RR_OK);

#ifndef RAWRPC_TESTING_H
#define RAWRPC_TESTING_H

#include "rawrpc/rawrpc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rr_testkit rr_testkit;

// rr_testkit_new makes the loop, a server listening on 127.0.0.1:0 and a
// channel to it; NULL options mean the defaults.  Register services on
// rr_testkit_server() before the first call.  Returns RR_OK, or an rr_err
// (nothing is left allocated).
RR_API int rr_testkit_new(rr_testkit **out, const rr_server_opts *sopts,
                          const rr_channel_opts *copts);

// rr_testkit_new_in is rr_testkit_new for the test named test (the macro
// below passes the calling function's name, which with cmocka is the
// test's), so that rr_testkit_free can say which test left a call.
RR_API int rr_testkit_new_in(rr_testkit **out, const rr_server_opts *sopts,
                             const rr_channel_opts *copts, const char *test);
#define rr_testkit_new(out, sopts, copts)                                      \
    rr_testkit_new_in((out), (sopts), (copts), __func__)

RR_API struct ev_loop *rr_testkit_loop(rr_testkit *kit);
RR_API rr_server *rr_testkit_server(rr_testkit *kit);
RR_API rr_channel *rr_testkit_channel(rr_testkit *kit);
RR_API uint16_t rr_testkit_port(rr_testkit *kit);

// rr_testkit_run_until runs the loop until *flag is true or timeout
// seconds of loop time have passed (a timer, never a sleep).  Returns
// *flag.
RR_API bool rr_testkit_run_until(rr_testkit *kit, const bool *flag,
                                 double timeout);

// rr_testkit_free frees the channel, the server and the loop.  A call
// whose handler never completed it is named on stderr (its method and
// the test) and failed, and the result is RR_EINVAL.  Returns RR_OK,
// RR_EINVAL so, or RR_ECLOSED when the process holds a different number
// of file descriptors than before rr_testkit_new: something leaked one.
RR_API int rr_testkit_free(rr_testkit *kit);

#ifdef __cplusplus
}
#endif

#endif // RAWRPC_TESTING_H
