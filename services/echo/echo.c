// SPDX-License-Identifier: MIT
//
// echo.c -- rawrpc.echo.Echo: the payload goes back as it came, without a
// copy (the reply points into the request, which lives until the reply is
// packed).

#include "echo.h"

#include "echo/echo.rr.h"

static void
echo_echo(rr_call *call, const Rawrpc__Echo__EchoRequest *req, void *arg)
{
    Rawrpc__Echo__EchoReply out = RAWRPC__ECHO__ECHO_REPLY__INIT;

    (void) arg;
    out.payload = req->payload;
    rr_rawrpc__echo__echo__echo__reply(call, &out);
}

int
rr_echo_register(rr_server *srv)
{
    static const rr_rawrpc__echo__echo__handlers handlers = {.echo = echo_echo};

    return rr_rawrpc__echo__echo__register(srv, &handlers, NULL);
}
