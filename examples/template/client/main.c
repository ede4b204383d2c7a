// SPDX-License-Identifier: MIT
//
// greeter-client ADDR NAME -- asks greeter-server at ADDR (host:port) for
// a greeting and the time.  A failed call prints its status and exits 1.

#include <stdio.h>
#include <stdlib.h>

#include <ev.h>

#include "greeter/v1/greeter.rr.h"

static int
failed(const char *what, rr_status st, char *msg)
{
    fprintf(stderr, "greeter-client: %s: %s: %s\n", what, rr_status_name(st),
            msg != NULL ? msg : "");
    free(msg);
    return 1;
}

static int
talk(rr_channel *ch, char *name)
{
    const rr_call_opts opts = {.timeout = 5.0};
    Greeter__V1__HelloRequest req = GREETER__V1__HELLO_REQUEST__INIT;
    Greeter__V1__HelloReply *reply = NULL;
    Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
    Google__Protobuf__Timestamp *ts = NULL;
    char *msg = NULL;
    rr_status st;

    req.name = name;
    st = rr_greeter__v1__greeter__hello__sync(ch, &req, &opts, &reply, &msg);
    if (st != RR_STATUS_OK)
        return failed("Hello", st, msg);
    printf("%s\n", reply->text);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    free(msg);
    msg = NULL;
    st = rr_greeter__v1__greeter__now__sync(ch, &empty, &opts, &ts, &msg);
    if (st != RR_STATUS_OK)
        return failed("Now", st, msg);
    printf("server time %lld.%09d\n", (long long) ts->seconds, (int) ts->nanos);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    free(msg);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: greeter-client ADDR NAME\n");
        return 2;
    }
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    rr_channel *ch = NULL;
    if (loop == NULL || rr_channel_new(&ch, loop, argv[1], NULL) != RR_OK) {
        fprintf(stderr, "greeter-client: bad address %s\n", argv[1]);
        return 2;
    }
    int rv = talk(ch, argv[2]);
    rr_channel_free(ch);
    ev_loop_destroy(loop);
    return rv;
}
