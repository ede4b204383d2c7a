// SPDX-License-Identifier: MIT
//
// echo.h -- the echo service (rawrpc.echo.Echo).

#ifndef RR_SERVICE_ECHO_H
#define RR_SERVICE_ECHO_H

#include <rawrpc/rawrpc.h>

// rr_echo_register serves rawrpc.echo.Echo on srv.
int rr_echo_register(rr_server *srv);

#endif // RR_SERVICE_ECHO_H
