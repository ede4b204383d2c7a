// SPDX-License-Identifier: MIT
//
// main.c -- protoc-gen-rawrpc, the protoc plugin that writes typed rawrpc
// stubs: x.rr.h and x.rr.c for every x.proto with services, next to
// protoc-c's x.pb-c.h.
//
//   protoc --c_out=OUT --rawrpc_out=OUT x.proto
//
// As plugin.proto says: a request that cannot be parsed is a failure of
// the plugin (stderr, exit 1); a .proto we cannot serve is the user's
// error, reported through the response's error field with exit 0.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "gen.h"
#include "google/protobuf/compiler/plugin.pb-c.h"

typedef Google__Protobuf__Compiler__CodeGeneratorRequest gen_request;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse gen_response;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse__File gen_out;

static uint8_t *
read_all(FILE *fp, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);

    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        uint8_t *p = realloc(buf, cap * 2);
        if (p == NULL) {
            free(buf);
            return NULL;
        }
        buf = p;
        cap *= 2;
    }
    if (buf != NULL && ferror(fp)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static const Google__Protobuf__FileDescriptorProto *
find_file(const gen_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_proto_file; i++) {
        if (strcmp(req->proto_file[i]->name, name) == 0)
            return req->proto_file[i];
    }
    return NULL;
}

// Adds one output file to resp.  Returns 0 or -2 (out of memory).
static int
add_output(gen_response *resp, const char *base, const char *suffix, emit *e)
{
    gen_out *o = malloc(sizeof(*o));
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *name = malloc(n);
    gen_out **files =
        realloc(resp->file, (resp->n_file + 1) * sizeof(gen_out *));

    if (files != NULL)
        resp->file = files;
    if (o == NULL || name == NULL || files == NULL || e->oom) {
        free(o);
        free(name);
        return -2;
    }
    google__protobuf__compiler__code_generator_response__file__init(o);
    snprintf(name, n, "%s%s", base, suffix);
    o->name = name;
    o->content = e->buf; // ownership moves to the response
    e->buf = NULL;
    resp->file[resp->n_file++] = o;
    return 0;
}

// The file's descriptor as reflection hands it out: without the source
// info (comments and spans), which only protoc's plugins need.  0 or -2.
static int
pack_descriptor(gen_file *model, const Google__Protobuf__FileDescriptorProto *f)
{
    Google__Protobuf__FileDescriptorProto copy = *f;

    copy.source_code_info = NULL;
    model->fdp_len = protobuf_c_message_get_packed_size(&copy.base);
    model->fdp = malloc(model->fdp_len > 0 ? model->fdp_len : 1);
    if (model->fdp == NULL)
        return -2;
    protobuf_c_message_pack(&copy.base, model->fdp);
    return 0;
}

// Streaming methods get no stubs until rawrpc streams: protoc shows this.
static void
warn_streaming(const gen_file *model)
{
    for (size_t si = 0; si < model->n_services; si++) {
        const gen_service *s = &model->services[si];
        for (size_t mi = 0; mi < s->n_methods; mi++) {
            if (s->methods[mi].streaming)
                fprintf(stderr,
                        "protoc-gen-rawrpc: %s: %s.%s is streaming, which "
                        "rawrpc does not support yet: no stubs for it (it "
                        "answers UNIMPLEMENTED)\n",
                        model->proto, s->full_name, s->methods[mi].name);
        }
    }
}

// Generates x.rr.h and x.rr.c for f.  0, -1 (resp->error set), -2.
static int
generate(gen_response *resp, const Google__Protobuf__FileDescriptorProto *f)
{
    gen_file model;
    char err[512];
    emit h, c;

    // A file without services still gets its two files, so a build can
    // list the outputs of every .proto without reading it.
    int rv = gen_model(&model, f, err, sizeof(err));
    if (rv == 0)
        rv = pack_descriptor(&model, f);
    if (rv == 0)
        warn_streaming(&model);
    if (rv == -1) {
        size_t n = strlen(f->name) + strlen(err) + 3;
        resp->error = malloc(n);
        if (resp->error != NULL)
            snprintf(resp->error, n, "%s: %s", f->name, err);
    }
    if (rv == 0) {
        emit_init(&h);
        emit_init(&c);
        gen_header(&h, &model);
        gen_source(&c, &model);
        if (add_output(resp, model.base, ".rr.h", &h) != 0 ||
            add_output(resp, model.base, ".rr.c", &c) != 0)
            rv = -2;
        emit_fini(&h);
        emit_fini(&c);
    }
    gen_model_free(&model);
    return rv;
}

static void
response_free(gen_response *resp)
{
    for (size_t i = 0; i < resp->n_file; i++) {
        free(resp->file[i]->name);
        free(resp->file[i]->content);
        free(resp->file[i]);
    }
    free(resp->file);
    free(resp->error);
}

int
main(void)
{
    size_t len = 0;
    uint8_t *in = read_all(stdin, &len);

    if (in == NULL) {
        fprintf(stderr, "protoc-gen-rawrpc: cannot read the request\n");
        return 1;
    }
    gen_request *req =
        google__protobuf__compiler__code_generator_request__unpack(NULL, len,
                                                                   in);
    free(in);
    if (req == NULL) {
        fprintf(stderr, "protoc-gen-rawrpc: stdin is not a "
                        "CodeGeneratorRequest (run me from protoc)\n");
        return 1;
    }

    gen_response resp =
        GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
    int rv = 0;
    for (size_t i = 0; i < req->n_file_to_generate && rv == 0; i++) {
        const Google__Protobuf__FileDescriptorProto *f =
            find_file(req, req->file_to_generate[i]);
        if (f == NULL) {
            fprintf(stderr, "protoc-gen-rawrpc: %s is not in the request\n",
                    req->file_to_generate[i]);
            rv = -2;
            break;
        }
        rv = generate(&resp, f);
    }
    google__protobuf__compiler__code_generator_request__free_unpacked(req,
                                                                      NULL);
    if (rv == -2) {
        fprintf(stderr, "protoc-gen-rawrpc: out of memory\n");
        response_free(&resp);
        return 1;
    }

    size_t n =
        google__protobuf__compiler__code_generator_response__get_packed_size(
            &resp);
    uint8_t *out = malloc(n > 0 ? n : 1);
    int status = 0;
    if (out == NULL) {
        status = 1;
    } else {
        google__protobuf__compiler__code_generator_response__pack(&resp, out);
        if (fwrite(out, 1, n, stdout) != n || fflush(stdout) != 0)
            status = 1;
    }
    free(out);
    response_free(&resp);
    return status;
}
