// SPDX-License-Identifier: MIT
//
// test_codegen.c -- the generated stubs compiled and run: typed handlers
// registered on a server, typed async and blocking calls through a
// channel, google.protobuf.Empty, types imported from another file, a
// handler field escaped from a C++ keyword, and a NULL handler.

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "greet.rr.h"
#include "harness.h"
#include "plain.rr.h"

static void
say(rr_call *call, const Demo__Greet__Hello *req, void *arg)
{
    Demo__Greet__Greeting out = DEMO__GREET__GREETING__INIT;
    char text[128];

    (void) arg;
    snprintf(text, sizeof(text), "hello, %s", req->name);
    if (req->options != NULL && req->options->shout) {
        for (char *p = text; *p; p++)
            *p = (char) toupper((unsigned char) *p);
    }
    out.text = text;
    out.int_ = (int32_t) strlen(text);
    assert_int_equal(rr_demo__greet__greeter__say__reply(call, &out), RR_OK);
}

static void
new_options(rr_call *call, const Demo__Greet__Hello__Options *req, void *arg)
{
    Demo__Greet__Hello__Options out = DEMO__GREET__HELLO__OPTIONS__INIT;

    (void) arg;
    out.shout = !req->shout; // flips it, so the test sees the handler ran
    rr_demo__greet__greeter__new__reply(call, &out);
}

static void
ping(rr_call *call, const Google__Protobuf__Empty *req, void *arg)
{
    Google__Protobuf__Empty out = GOOGLE__PROTOBUF__EMPTY__INIT;

    (void) req;
    (*(int *) arg)++;
    rr_switch__ping__reply(call, &out);
}

typedef struct said {
    int runs;
    rr_status status;
    char text[128];
    int32_t len;
} said;

static void
say_done(rr_status status, const char *message,
         const Demo__Greet__Greeting *reply, void *arg)
{
    said *s = arg;

    (void) message;
    s->runs++;
    s->status = status;
    if (reply != NULL) {
        snprintf(s->text, sizeof(s->text), "%s", reply->text);
        s->len = reply->int_;
    }
}

static void
count_done(rr_status status, const char *message,
           const Demo__Greet__Greeting *reply, void *arg)
{
    said *s = arg;

    s->runs++;
    s->status = status;
    snprintf(s->text, sizeof(s->text), "%s", message);
    assert_null(reply);
}

static void
test_codegen_typed_calls(void **state)
{
    (void) state;
    fixture fx;
    int pings = 0;
    char name[] = "world";

    assert_int_equal(fx_setup(&fx, 30.0, NULL, NULL), 0);
    const rr_demo__greet__greeter__handlers greeter = {
        .say = say,
        .new_ = new_options,
    };
    const rr_demo__greet__counter__handlers counter = {.count = NULL};
    const rr_switch__handlers sw = {.ping = ping, .greet = say};
    assert_int_equal(rr_demo__greet__greeter__register(fx.srv, &greeter, NULL),
                     RR_OK);
    assert_int_equal(rr_demo__greet__counter__register(fx.srv, &counter, NULL),
                     RR_OK);
    assert_int_equal(rr_switch__register(fx.srv, &sw, &pings), RR_OK);
    // Registering the same service twice is refused.
    assert_int_equal(rr_switch__register(fx.srv, &sw, &pings), RR_EINVAL);

    // Async, typed.
    Demo__Greet__Hello hello = DEMO__GREET__HELLO__INIT;
    Demo__Greet__Hello__Options opts = DEMO__GREET__HELLO__OPTIONS__INIT;
    hello.name = name;
    said s = {0};
    assert_int_equal(
        rr_demo__greet__greeter__say(fx.ch, &hello, NULL, say_done, &s, NULL),
        RR_OK);
    while (s.runs == 0 && !fx.guard_fired)
        ev_run(fx.loop, EVRUN_ONCE);
    assert_int_equal(s.status, RR_STATUS_OK);
    assert_string_equal(s.text, "hello, world");
    assert_int_equal(s.len, 12);

    // Blocking, typed, with a nested message in the request.
    opts.shout = true;
    hello.options = &opts;
    Demo__Greet__Greeting *g = NULL;
    assert_int_equal(
        rr_demo__greet__greeter__say__sync(fx.ch, &hello, NULL, &g, NULL),
        RR_STATUS_OK);
    assert_non_null(g);
    assert_string_equal(g->text, "HELLO, WORLD");
    protobuf_c_message_free_unpacked(&g->base, NULL);

    // The method named after a C++ keyword.
    Demo__Greet__Hello__Options *o = NULL;
    opts.shout = false;
    assert_int_equal(
        rr_demo__greet__greeter__new__sync(fx.ch, &opts, NULL, &o, NULL),
        RR_STATUS_OK);
    assert_true(o->shout);
    protobuf_c_message_free_unpacked(&o->base, NULL);

    // No package, google.protobuf.Empty, an imported request type.
    Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
    assert_int_equal(rr_switch__ping__sync(fx.ch, &empty, NULL, NULL, NULL),
                     RR_STATUS_OK);
    assert_int_equal(pings, 1);
    assert_string_equal(RR_SWITCH__PING__NAME, "/Switch/Ping");
    g = NULL;
    assert_int_equal(rr_switch__greet__sync(fx.ch, &hello, NULL, &g, NULL),
                     RR_STATUS_OK);
    assert_string_equal(g->text, "hello, world");
    protobuf_c_message_free_unpacked(&g->base, NULL);

    // A NULL handler is UNIMPLEMENTED; a NULL request never calls back.
    said c = {0};
    assert_int_equal(rr_demo__greet__counter__count(fx.ch, &hello, NULL,
                                                    count_done, &c, NULL),
                     RR_OK);
    assert_int_equal(
        rr_demo__greet__counter__count(fx.ch, NULL, NULL, count_done, &c, NULL),
        RR_EINVAL);
    while (c.runs == 0 && !fx.guard_fired)
        ev_run(fx.loop, EVRUN_ONCE);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.status, RR_STATUS_UNIMPLEMENTED);
    assert_string_equal(c.text, "unknown method /demo.greet.Counter/Count");
    fx_teardown(&fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codegen_typed_calls),
    };
    return cmocka_run_group_tests_name("codegen", tests, NULL, NULL);
}
