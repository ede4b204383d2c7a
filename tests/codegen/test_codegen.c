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
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "harness.h"
#include "mixed.rr.h"
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

// ------------------------------------------------------------ reflection

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_req;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_resp;

static const rr_method reflection_info = {
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    &grpc__reflection__v1__server_reflection_request__descriptor,
    &grpc__reflection__v1__server_reflection_response__descriptor};

static refl_resp *
reflect(fixture *fx, refl_req *req)
{
    ProtobufCMessage *reply = NULL;
    char *msg = NULL;

    rr_status st = rr_channel_call_sync(fx->ch, &reflection_info, &req->base,
                                        NULL, &reply, &msg);
    if (st != RR_STATUS_OK)
        fail_msg("reflection: %s: %s", rr_status_name(st), msg);
    free(msg);
    return (refl_resp *) reply;
}

static refl_resp *
reflect_symbol(fixture *fx, const char *symbol)
{
    refl_req req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;

    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    req.file_containing_symbol = (char *) symbol;
    return reflect(fx, &req);
}

static bool
has_service(const refl_resp *r, const char *name)
{
    const Grpc__Reflection__V1__ListServiceResponse *l =
        r->list_services_response;

    for (size_t i = 0; l != NULL && i < l->n_service; i++) {
        if (strcmp(l->service[i]->name, name) == 0)
            return true;
    }
    return false;
}

static bool
blob_is(const ProtobufCBinaryData *b, const rr_file_desc *f)
{
    return b->len == f->descriptor_len &&
           memcmp(b->data, f->descriptor, b->len) == 0;
}

// The services registered, and the descriptors the generated code
// embeds, for a symbol (with the files it imports) or a file name; an
// unknown symbol is NOT_FOUND, an unsupported request UNIMPLEMENTED.
static void
test_codegen_reflection(void **state)
{
    (void) state;
    fixture fx;
    const rr_demo__greet__greeter__handlers greeter = {.say = say};
    const rr_switch__handlers sw = {.ping = ping};
    int pings = 0;

    assert_int_equal(fx_setup(&fx, 30.0, NULL, NULL), 0);
    assert_int_equal(rr_demo__greet__greeter__register(fx.srv, &greeter, NULL),
                     RR_OK);
    assert_int_equal(rr_switch__register(fx.srv, &sw, &pings), RR_OK);
    assert_int_equal(rr_server_enable_reflection(fx.srv), RR_OK);

    refl_req req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    req.host = (char *) "h";
    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    req.list_services = (char *) "";
    refl_resp *r = reflect(&fx, &req);
    assert_string_equal(r->valid_host, "h");
    assert_int_equal(
        r->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    assert_true(has_service(r, "demo.greet.Greeter"));
    assert_true(has_service(r, "Switch"));
    assert_true(has_service(r, "grpc.reflection.v1.ServerReflection"));
    assert_true(has_service(r, "rrtest.Test")); // the fixture's
    assert_int_equal(r->list_services_response->n_service, 4);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    r = reflect_symbol(&fx, "demo.greet.Greeter.Say");
    assert_int_equal(
        r->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    assert_int_equal(r->file_descriptor_response->n_file_descriptor_proto, 1);
    assert_true(blob_is(&r->file_descriptor_response->file_descriptor_proto[0],
                        &rr_greet_2eproto__file));
    protobuf_c_message_free_unpacked(&r->base, NULL);

    // A nested message of plain.proto: the file first, then its import
    // (the well-known empty.proto is the tools' own).
    r = reflect_symbol(&fx, "Switch");
    assert_int_equal(
        r->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    const Grpc__Reflection__V1__FileDescriptorResponse *fd =
        r->file_descriptor_response;
    assert_int_equal(fd->n_file_descriptor_proto, 2);
    assert_true(
        blob_is(&fd->file_descriptor_proto[0], &rr_plain_2eproto__file));
    assert_true(
        blob_is(&fd->file_descriptor_proto[1], &rr_greet_2eproto__file));
    protobuf_c_message_free_unpacked(&r->base, NULL);

    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
    req.file_by_filename = (char *) "greet.proto";
    r = reflect(&fx, &req);
    assert_int_equal(
        r->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    assert_true(blob_is(&r->file_descriptor_response->file_descriptor_proto[0],
                        &rr_greet_2eproto__file));
    protobuf_c_message_free_unpacked(&r->base, NULL);

    r = reflect_symbol(&fx, "demo.greet.Nope");
    assert_int_equal(
        r->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    assert_int_equal(r->error_response->error_code, RR_STATUS_NOT_FOUND);
    assert_non_null(
        strstr(r->error_response->error_message, "demo.greet.Nope"));
    protobuf_c_message_free_unpacked(&r->base, NULL);

    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
    req.all_extension_numbers_of_type = (char *) "demo.greet.Hello";
    r = reflect(&fx, &req);
    assert_int_equal(
        r->message_response_case,
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    assert_int_equal(r->error_response->error_code, RR_STATUS_UNIMPLEMENTED);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    fx_teardown(&fx);
}

// ------------------------------------------------------- mixed streaming

static void
hello(rr_call *call, const Mixed__M *req, void *arg)
{
    (void) arg;
    rr_mixed__chat__hello__reply(call, req);
}

// The unary methods of a service with streaming ones have their stubs;
// a streaming method, called anyway, answers UNIMPLEMENTED.
static void
test_codegen_mixed_streaming(void **state)
{
    (void) state;
    fixture fx;
    const rr_mixed__chat__handlers chat = {.hello = hello, .bye = NULL};

    assert_int_equal(fx_setup(&fx, 30.0, NULL, NULL), 0);
    assert_int_equal(rr_mixed__chat__register(fx.srv, &chat, NULL), RR_OK);
    Mixed__M m = MIXED__M__INIT, *reply = NULL;
    m.text = (char *) "hi";
    assert_int_equal(rr_mixed__chat__hello__sync(fx.ch, &m, NULL, &reply, NULL),
                     RR_STATUS_OK);
    assert_string_equal(reply->text, "hi");
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    assert_int_equal(rr_mixed__chat__bye__sync(fx.ch, &m, NULL, NULL, NULL),
                     RR_STATUS_UNIMPLEMENTED);
    const rr_method talk = {"/mixed.Chat/Talk", &mixed__m__descriptor,
                            &mixed__m__descriptor};
    ProtobufCMessage *out = NULL;
    assert_int_equal(
        rr_channel_call_sync(fx.ch, &talk, &m.base, NULL, &out, NULL),
        RR_STATUS_UNIMPLEMENTED);
    assert_null(out);
    fx_teardown(&fx);
}

// A server with more than one loop shares a method table frozen at the
// first listen: a service (its file too) registered after it is refused
// with the reason; with one loop (test_codegen_typed_calls) it is taken.
static void
test_codegen_register_after_listen_with_loops(void **state)
{
    (void) state;
    fixture fx;
    rr_server_opts so;
    const rr_demo__greet__greeter__handlers greeter = {.say = say};

    rr_server_opts_init(&so);
    so.loops = 2;
    assert_int_equal(fx_setup(&fx, 30.0, &so, NULL), 0);
    assert_int_equal(rr_demo__greet__greeter__register(fx.srv, &greeter, NULL),
                     RR_EINVAL);
    assert_non_null(
        strstr(rr_last_error(), "before the first rr_server_listen"));
    assert_int_equal(
        rr_server_add_service(fx.srv, &demo__greet__greeter__descriptor,
                              (const rr_handler_cb[2]){NULL, NULL}, NULL),
        RR_EINVAL);
    assert_non_null(
        strstr(rr_last_error(), "demo.greet.Greeter comes after it"));
    assert_int_equal(rr_server_enable_reflection(fx.srv), RR_EINVAL);
    fx_expect_service(&fx); // what was registered before still serves
    fx_teardown(&fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codegen_typed_calls),
        cmocka_unit_test(test_codegen_reflection),
        cmocka_unit_test(test_codegen_mixed_streaming),
        cmocka_unit_test(test_codegen_register_after_listen_with_loops),
    };
    return cmocka_run_group_tests_name("codegen", tests, NULL, NULL);
}
