// SPDX-License-Identifier: MIT
//
// gen.h -- the generator's model of one .proto file: its services and
// methods with every C name worked out (names.c), ready for gen_header.c
// and gen_source.c to print.

#ifndef RRGEN_GEN_H
#define RRGEN_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emit.h"
#include "google/protobuf/descriptor.pb-c.h"

typedef struct gen_method {
    const char *name; // "Say"
    char *field;      // handler field: "say", or "return_" for a keyword
    char *fn;         // "rr_demo__echo__say"
    char *macro;      // "RR_DEMO__ECHO__SAY"
    char *wire_name;  // "/demo.Echo/Say"
    char *in_c;       // "Demo__SayRequest"
    char *out_c;      // "Demo__SayReply"
    char *in_desc;    // "demo__say_request__descriptor"
    char *out_desc;
    const char *comment; // leading comment in the .proto, or NULL
    bool streaming;      // not generated (no streaming yet): name only
} gen_method;

typedef struct gen_service {
    char *full_name; // "demo.Echo"
    char *prefix;    // "rr_demo__echo"
    char *desc;      // protoc-c's "demo__echo__descriptor"
    const char *comment;
    gen_method *methods;
    size_t n_methods;
} gen_service;

typedef struct gen_file {
    const char *proto; // "demo/echo.proto"
    char *base;        // "demo/echo"
    char *guard;       // include guard
    gen_service *services;
    size_t n_services;
    // For reflection: the file's rr_file_desc, its FileDescriptorProto
    // without source info, the rr_file_desc names of the imports rawrpc
    // generates too (the well-known types are not among them), and the
    // fully qualified names the file defines.
    char *file_var; // "rr_demo_2fecho_2eproto__file"
    uint8_t *fdp;
    size_t fdp_len;
    char **deps;
    size_t n_deps;
    char **symbols;
    size_t n_symbols;
} gen_file;

// gen_model fills *out from f.  Returns 0; -1 with a message in err for
// what protoc should report (a streaming method, a name collision); -2
// when out of memory.
int gen_model(gen_file *out, const Google__Protobuf__FileDescriptorProto *f,
              char *err, size_t errsz);
void gen_model_free(gen_file *m);

void gen_header(emit *e, const gen_file *m);
void gen_source(emit *e, const gen_file *m);

#endif // RRGEN_GEN_H
