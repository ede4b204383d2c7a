// SPDX-License-Identifier: MIT
//
// gen_model.c -- from a FileDescriptorProto to the names gen_header.c and
// gen_source.c print; see gen.h.

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "names.h"

// The leading comment at path in f's source info, or NULL.
static const char *
comment_at(const Google__Protobuf__FileDescriptorProto *f, const int32_t *path,
           size_t n)
{
    const Google__Protobuf__SourceCodeInfo *sci = f->source_code_info;

    for (size_t i = 0; sci != NULL && i < sci->n_location; i++) {
        const Google__Protobuf__SourceCodeInfo__Location *l = sci->location[i];
        if (l->n_path == n && memcmp(l->path, path, n * sizeof(*path)) == 0)
            return l->leading_comments;
    }
    return NULL;
}

static char *
concat(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);

    if (s != NULL)
        snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

// Names of the service's own functions and types, which a method's C
// name must not take.
static const char *const service_words[] = {"handlers", "register"};

static int
method_model(gen_method *gm, const gen_service *gs,
             const Google__Protobuf__MethodDescriptorProto *md, char *err,
             size_t errsz)
{
    if (md->client_streaming || md->server_streaming) {
        // Until rawrpc streams: no stubs, and UNIMPLEMENTED if called.
        gm->name = md->name;
        gm->streaming = true;
        return 0;
    }
    char *lower = names_camel_to_lower(md->name);
    if (lower == NULL)
        return -2;
    if (names_is_c_keyword(lower)) {
        // protoc-c names a member of its service struct after the method,
        // and does not escape keywords: its own header would not compile.
        snprintf(err, errsz,
                 "method %s.%s: protoc-c would name a struct member \"%s\", "
                 "a C keyword, and its output would not compile; rename the "
                 "method",
                 gs->full_name, md->name, lower);
        free(lower);
        return -1;
    }
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(lower, service_words[i]) == 0) {
            snprintf(err, errsz,
                     "method %s.%s: its C name %s__%s is taken by the "
                     "service's own %s; rename the method",
                     gs->full_name, md->name, gs->prefix, lower,
                     service_words[i]);
            free(lower);
            return -1;
        }
    }
    gm->name = md->name;
    gm->field = names_is_keyword(lower) ? concat(lower, "_", "") : NULL;
    gm->fn = concat(gs->prefix, "__", lower);
    char *up = names_upper(gm->fn + 3); // past "rr_"
    gm->macro = up != NULL ? concat("RR_", up, "") : NULL;
    free(up);
    gm->wire_name = malloc(strlen(gs->full_name) + strlen(md->name) + 3);
    if (gm->wire_name != NULL)
        snprintf(gm->wire_name, strlen(gs->full_name) + strlen(md->name) + 3,
                 "/%s/%s", gs->full_name, md->name);
    gm->in_c = names_c(md->input_type);
    gm->out_c = names_c(md->output_type);
    char *in_l = names_lower(md->input_type);
    char *out_l = names_lower(md->output_type);
    gm->in_desc = in_l != NULL ? concat(in_l, "__descriptor", "") : NULL;
    gm->out_desc = out_l != NULL ? concat(out_l, "__descriptor", "") : NULL;
    free(in_l);
    free(out_l);
    if (gm->field == NULL)
        gm->field = lower;
    else
        free(lower);
    if (gm->field == NULL || gm->fn == NULL || gm->macro == NULL ||
        gm->wire_name == NULL || gm->in_c == NULL || gm->out_c == NULL ||
        gm->in_desc == NULL || gm->out_desc == NULL)
        return -2;
    return 0;
}

static int
service_model(gen_service *gs, const Google__Protobuf__FileDescriptorProto *f,
              size_t si, char *err, size_t errsz)
{
    const Google__Protobuf__ServiceDescriptorProto *sd = f->service[si];
    const char *pkg = f->package != NULL ? f->package : "";
    int32_t path[4] = {6, (int32_t) si, 2, 0}; // FileDescriptorProto.service

    gs->full_name = *pkg ? concat(pkg, ".", sd->name) : strdup(sd->name);
    if (gs->full_name == NULL)
        return -2;
    char *lower = names_lower(gs->full_name);
    gs->prefix = lower != NULL ? concat("rr_", lower, "") : NULL;
    gs->desc = lower != NULL ? concat(lower, "__descriptor", "") : NULL;
    free(lower);
    gs->comment = comment_at(f, path, 2);
    gs->methods = calloc(sd->n_method ? sd->n_method : 1, sizeof(gen_method));
    if (gs->prefix == NULL || gs->desc == NULL || gs->methods == NULL)
        return -2;
    for (size_t mi = 0; mi < sd->n_method; mi++) {
        gs->n_methods = mi + 1;
        int rv = method_model(&gs->methods[mi], gs, sd->method[mi], err, errsz);
        if (rv != 0)
            return rv;
        path[3] = (int32_t) mi;
        gs->methods[mi].comment = comment_at(f, path, 4);
    }
    return 0;
}

// Appends strdup(name) to *list; -2 when out of memory.
static int
list_add(char ***list, size_t *n, char *name)
{
    char **p = realloc(*list, (*n + 1) * sizeof(*p));

    if (p == NULL || name == NULL) {
        free(name);
        if (p != NULL)
            *list = p;
        return -2;
    }
    *list = p;
    p[(*n)++] = name;
    return 0;
}

static int
symbols_enums(gen_file *out, const char *scope,
              Google__Protobuf__EnumDescriptorProto *const *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list_add(&out->symbols, &out->n_symbols,
                     *scope ? concat(scope, ".", e[i]->name)
                            : strdup(e[i]->name)) != 0)
            return -2;
    }
    return 0;
}

// Every message and enum under scope, nested ones too.
static int
symbols_messages(gen_file *out, const char *scope,
                 Google__Protobuf__DescriptorProto *const *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *name =
            *scope ? concat(scope, ".", m[i]->name) : strdup(m[i]->name);
        if (list_add(&out->symbols, &out->n_symbols, name) != 0 ||
            symbols_enums(out, name, m[i]->enum_type, m[i]->n_enum_type) != 0 ||
            symbols_messages(out, name, m[i]->nested_type,
                             m[i]->n_nested_type) != 0)
            return -2;
    }
    return 0;
}

// The reflection model: symbols and the generated imports.
static int
reflection_model(gen_file *out, const Google__Protobuf__FileDescriptorProto *f)
{
    const char *pkg = f->package != NULL ? f->package : "";
    char *id = names_file_id(f->name);

    out->file_var = id != NULL ? concat("rr_", id, "__file") : NULL;
    free(id);
    if (out->file_var == NULL ||
        symbols_messages(out, pkg, f->message_type, f->n_message_type) != 0 ||
        symbols_enums(out, pkg, f->enum_type, f->n_enum_type) != 0)
        return -2;
    for (size_t si = 0; si < out->n_services; si++) {
        const gen_service *gs = &out->services[si];
        if (gs->full_name == NULL ||
            list_add(&out->symbols, &out->n_symbols, strdup(gs->full_name)))
            return -2;
        for (size_t mi = 0; mi < gs->n_methods; mi++) {
            if (list_add(&out->symbols, &out->n_symbols,
                         concat(gs->full_name, ".", gs->methods[mi].name)))
                return -2;
        }
    }
    for (size_t i = 0; i < f->n_dependency; i++) {
        if (strncmp(f->dependency[i], "google/protobuf/", 16) == 0)
            continue; // the well-known types: the tools know them
        char *dep = names_file_id(f->dependency[i]);
        int rv = list_add(&out->deps, &out->n_deps,
                          dep != NULL ? concat("rr_", dep, "__file") : NULL);
        free(dep);
        if (rv != 0)
            return -2;
    }
    return 0;
}

int
gen_model(gen_file *out, const Google__Protobuf__FileDescriptorProto *f,
          char *err, size_t errsz)
{
    memset(out, 0, sizeof(*out));
    out->proto = f->name;
    out->base = names_strip_proto(f->name);
    char *id = names_file_id(f->name);
    out->guard = id != NULL ? concat("RR_", id, "_RR_H") : NULL;
    free(id);
    out->services =
        calloc(f->n_service ? f->n_service : 1, sizeof(gen_service));
    if (out->base == NULL || out->guard == NULL || out->services == NULL)
        return -2;
    for (size_t si = 0; si < f->n_service; si++) {
        out->n_services = si + 1;
        int rv = service_model(&out->services[si], f, si, err, errsz);
        if (rv != 0)
            return rv;
    }
    return reflection_model(out, f);
}

void
gen_model_free(gen_file *m)
{
    for (size_t si = 0; si < m->n_services; si++) {
        gen_service *gs = &m->services[si];
        for (size_t mi = 0; mi < gs->n_methods; mi++) {
            gen_method *gm = &gs->methods[mi];
            free(gm->field);
            free(gm->fn);
            free(gm->macro);
            free(gm->wire_name);
            free(gm->in_c);
            free(gm->out_c);
            free(gm->in_desc);
            free(gm->out_desc);
        }
        free(gs->methods);
        free(gs->full_name);
        free(gs->prefix);
        free(gs->desc);
    }
    free(m->services);
    free(m->base);
    free(m->guard);
    free(m->file_var);
    free(m->fdp);
    for (size_t i = 0; i < m->n_deps; i++)
        free(m->deps[i]);
    free(m->deps);
    for (size_t i = 0; i < m->n_symbols; i++)
        free(m->symbols[i]);
    free(m->symbols);
    memset(m, 0, sizeof(*m));
}
