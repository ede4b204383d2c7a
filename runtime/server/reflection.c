// SPDX-License-Identifier: MIT
//
// reflection.c -- the builtin grpc.reflection.v1 service (unary; see
// proto/grpc/reflection/v1/reflection.proto): the services a server
// serves, and the file descriptors the generated code registered
// (rr_stub_add_file), for a symbol or a file name, with their imports.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "rawrpc/rawrpc.h"
#include "rawrpc/stub.h"
#include "server/call.h"
#include "server/methods.h"
#include "server/server.h"

#define MAX_FILES 256 // in one answer: a file and everything it imports

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_req;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_resp;

// What one answer holds until it is packed.
typedef struct answer {
    refl_resp resp;
    Grpc__Reflection__V1__FileDescriptorResponse files;
    Grpc__Reflection__V1__ListServiceResponse list;
    Grpc__Reflection__V1__ErrorResponse error;
    char error_text[300];
    const rr_file_desc *seen[MAX_FILES];
    ProtobufCBinaryData blobs[MAX_FILES];
    size_t n;
    Grpc__Reflection__V1__ServiceResponse **services;
    size_t n_services, cap_services;
    bool nomem;
} answer;

static void
answer_error(answer *a, rr_status code, const char *msg)
{
    snprintf(a->error_text, sizeof(a->error_text), "%s", msg);
    grpc__reflection__v1__error_response__init(&a->error);
    a->error.error_code = (int32_t) code;
    a->error.error_message = a->error_text;
    a->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    a->resp.error_response = &a->error;
}

// Adds f and what it imports, depth first, each once.
static void
answer_file(answer *a, const rr_file_desc *f)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->seen[i] == f)
            return;
    }
    if (a->n == MAX_FILES)
        return;
    a->seen[a->n] = f;
    a->blobs[a->n].data = (uint8_t *) f->descriptor;
    a->blobs[a->n].len = f->descriptor_len;
    a->n++;
    for (size_t i = 0; f->deps != NULL && f->deps[i] != NULL; i++)
        answer_file(a, f->deps[i]);
}

static void
answer_files(answer *a, const rr_file_desc *f, const char *what,
             const char *name)
{
    char msg[300];

    if (f == NULL) {
        snprintf(msg, sizeof(msg), "no %s %s is known to this server", what,
                 name);
        answer_error(a, RR_STATUS_NOT_FOUND, msg);
        return;
    }
    answer_file(a, f);
    grpc__reflection__v1__file_descriptor_response__init(&a->files);
    a->files.n_file_descriptor_proto = a->n;
    a->files.file_descriptor_proto = a->blobs;
    a->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    a->resp.file_descriptor_response = &a->files;
}

static void
add_service(const char *name, size_t len, void *arg)
{
    answer *a = arg;

    if (a->nomem)
        return;
    if (a->n_services == a->cap_services) {
        size_t cap = a->cap_services ? a->cap_services * 2 : 8;
        // An array of pointers: the size is a pointer's.
        // NOLINTNEXTLINE(bugprone-sizeof-expression)
        void *p = realloc(a->services, cap * sizeof(*a->services));
        if (p == NULL) {
            a->nomem = true;
            return;
        }
        a->services = p;
        a->cap_services = cap;
    }
    Grpc__Reflection__V1__ServiceResponse *s = malloc(sizeof(*s) + len + 1);
    if (s == NULL) {
        a->nomem = true;
        return;
    }
    grpc__reflection__v1__service_response__init(s);
    s->name = (char *) (s + 1);
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    a->services[a->n_services++] = s;
}

static void
answer_free(answer *a)
{
    for (size_t i = 0; i < a->n_services; i++)
        free(a->services[i]);
    free(a->services);
}

static void
reflection_info(rr_call *call, const ProtobufCMessage *msg, void *arg)
{
    const refl_req *req = (const refl_req *) msg;
    const rr__methods *t = call->core->methods;
    answer *a = calloc(1, sizeof(*a));

    (void) arg;
    if (a == NULL) {
        rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    grpc__reflection__v1__server_reflection_response__init(&a->resp);
    a->resp.valid_host = req->host;
    a->resp.original_request = (refl_req *) req;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        answer_files(a, rr__methods_file_named(t, req->file_by_filename),
                     "file", req->file_by_filename);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        answer_files(a,
                     rr__methods_file_defining(t, req->file_containing_symbol),
                     "symbol", req->file_containing_symbol);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        rr__methods_services(t, add_service, a);
        grpc__reflection__v1__list_service_response__init(&a->list);
        a->list.n_service = a->n_services;
        a->list.service = a->services;
        a->resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        a->resp.list_services_response = &a->list;
        break;
    default:
        answer_error(a, RR_STATUS_UNIMPLEMENTED,
                     "rawrpc answers list_services, file_by_filename and "
                     "file_containing_symbol");
    }
    if (a->nomem)
        rr_call_fail(call, RR_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    else
        rr_call_reply(call, &a->resp.base);
    answer_free(a);
    free(a);
}

int
rr_server_enable_reflection(rr_server *srv)
{
    static const rr_handler_cb handlers[1] = {reflection_info};

    if (srv == NULL)
        return RR_EINVAL;
    return rr_server_add_service(
        srv, &grpc__reflection__v1__server_reflection__descriptor, handlers,
        NULL);
}

int
rr_stub_add_file(rr_server *srv, const rr_file_desc *file)
{
    if (srv == NULL || file == NULL || file->name == NULL)
        return RR_EINVAL;
    int rv = rr__methods_add_file(srv->methods, file);
    if (rv == RR_EINVAL)
        rr__set_last_error("a server with more than one loop takes its "
                           "files before the first rr_server_listen: %s "
                           "comes after it",
                           file->name);
    return rv;
}
