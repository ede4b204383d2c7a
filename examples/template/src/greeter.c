// SPDX-License-Identifier: MIT
//
// greeter.c -- greeter.v1.Greeter's handlers; see greeter.h.

// clock_gettime, under -std=c11.
#define _POSIX_C_SOURCE 200809L // NOLINT(bugprone-reserved-identifier)

#include "greeter.h"

#include <stdio.h>
#include <time.h>

static void
hello(rr_call *call, const Greeter__V1__HelloRequest *req, void *arg)
{
    Greeter__V1__HelloReply out = GREETER__V1__HELLO_REPLY__INIT;
    char text[128];

    (void) arg;
    if (req->name[0] == '\0') {
        rr_call_fail(call, RR_STATUS_INVALID_ARGUMENT, "name is empty");
        return;
    }
    snprintf(text, sizeof(text), "hello, %s", req->name);
    out.text = text;
    rr_greeter__v1__greeter__hello__reply(call, &out);
}

static void
now(rr_call *call, const Google__Protobuf__Empty *req, void *arg)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    struct timespec t;

    (void) req;
    (void) arg;
    clock_gettime(CLOCK_REALTIME, &t);
    ts.seconds = t.tv_sec;
    ts.nanos = (int32_t) t.tv_nsec;
    rr_greeter__v1__greeter__now__reply(call, &ts);
}

int
greeter_register(rr_server *srv)
{
    static const rr_greeter__v1__greeter__handlers handlers = {
        .hello = hello,
        .now = now,
    };
    return rr_greeter__v1__greeter__register(srv, &handlers, NULL);
}
