// SPDX-License-Identifier: MIT
//
// gen_source.c -- prints x.rr.c: method constants, the trampolines that
// turn rawrpc's generic handler and callback calls into typed ones, and
// the typed functions x.rr.h declares.

#include "gen.h"

static void
source_method(emit *e, const gen_method *m)
{
    emit_printf(e,
                "\nconst rr_method %s__method = {\n"
                "    %s__NAME, &%s, &%s};\n",
                m->fn, m->macro, m->in_desc, m->out_desc);
    // Server trampoline: rr_stub_fn back to the typed handler.
    emit_printf(e,
                "\nstatic void\n%s__serve(rr_call *call, const "
                "ProtobufCMessage *req,\n"
                "    rr_stub_fn fn, void *arg)\n{\n"
                "    void (*h)(rr_call *, const %s *, void *) =\n"
                "        (void (*)(rr_call *, const %s *, void *)) fn;\n\n"
                "    h(call, (const %s *) req, arg);\n}\n",
                m->fn, m->in_c, m->in_c, m->in_c);
    emit_printf(e,
                "\nint\n%s__reply(rr_call *call, const %s *reply)\n{\n"
                "    return rr_call_reply(call, reply != NULL ? &reply->base "
                ": NULL);\n}\n",
                m->fn, m->out_c);
    // Client trampoline and calls.
    emit_printf(e,
                "\nstatic void\n%s__done(const rr_result *res, rr_stub_fn "
                "fn, void *arg)\n{\n"
                "    %s__cb cb = (%s__cb) fn;\n\n"
                "    cb(res->status, res->message, (const %s *) res->reply, "
                "arg);\n}\n",
                m->fn, m->fn, m->fn, m->out_c);
    emit_printf(e,
                "\nint\n%s(rr_channel *ch, const %s *req,\n"
                "    const rr_call_opts *opts, %s__cb cb, void *arg, "
                "uint64_t *token)\n{\n"
                "    return rr_stub_call(ch, &%s__method,\n"
                "                        req != NULL ? &req->base : NULL, "
                "opts, %s__done,\n"
                "                        (rr_stub_fn) cb, arg, token);\n}\n",
                m->fn, m->in_c, m->fn, m->fn, m->fn);
    emit_printf(e,
                "\nrr_status\n%s__sync(rr_channel *ch, const %s *req,\n"
                "    const rr_call_opts *opts, %s **reply, char "
                "**message)\n{\n"
                "    ProtobufCMessage *m = NULL;\n"
                "    rr_status st = rr_channel_call_sync(ch, &%s__method,\n"
                "        req != NULL ? &req->base : NULL, opts, &m, "
                "message);\n\n"
                "    if (reply != NULL)\n"
                "        *reply = (%s *) m;\n"
                "    else if (m != NULL)\n"
                "        protobuf_c_message_free_unpacked(m, NULL);\n"
                "    return st;\n}\n",
                m->fn, m->in_c, m->out_c, m->fn, m->out_c);
}

static void
source_register(emit *e, const gen_service *s, const char *file_var)
{
    emit_printf(e,
                "\nint\n%s__register(rr_server *srv,\n"
                "    const %s__handlers *handlers, void *arg)\n{\n"
                "    static const rr_stub_handler tramps[%zu] = {\n",
                s->prefix, s->prefix, s->n_methods);
    for (size_t i = 0; i < s->n_methods; i++) {
        if (s->methods[i].streaming)
            emit_printf(e, "        NULL, /* %s: streaming */\n",
                        s->methods[i].name);
        else
            emit_printf(e, "        %s__serve,\n", s->methods[i].fn);
    }
    emit_printf(e, "    };\n    const rr_stub_fn fns[%zu] = {\n", s->n_methods);
    for (size_t i = 0; i < s->n_methods; i++) {
        if (s->methods[i].streaming)
            emit_printf(e, "        NULL,\n");
        else
            emit_printf(e, "        (rr_stub_fn) handlers->%s,\n",
                        s->methods[i].field);
    }
    emit_printf(e,
                "    };\n"
                "    int rv = rr_stub_add_file(srv, &%s);\n\n"
                "    if (rv != RR_OK)\n"
                "        return rv;\n"
                "    return rr_stub_add_service(srv, &%s, tramps, fns, "
                "arg);\n}\n",
                file_var, s->desc);
}

// The file's rr_file_desc, for server reflection (rr_stub_add_file).
static void
source_file_desc(emit *e, const gen_file *f)
{
    emit_printf(e, "\n/* ---- %s, for server reflection ---- */\n\n", f->proto);
    for (size_t i = 0; i < f->n_deps; i++)
        emit_printf(e, "extern const rr_file_desc %s;\n", f->deps[i]);
    emit_printf(e, "\nstatic const uint8_t %s_descriptor[%zu] = {", f->file_var,
                f->fdp_len > 0 ? f->fdp_len : 1);
    for (size_t i = 0; i < f->fdp_len; i++)
        emit_printf(e, "%s0x%02x,", i % 12 == 0 ? "\n    " : " ", f->fdp[i]);
    emit_printf(e, "\n};\n\nstatic const rr_file_desc *const %s_deps[] = {\n",
                f->file_var);
    for (size_t i = 0; i < f->n_deps; i++)
        emit_printf(e, "    &%s,\n", f->deps[i]);
    emit_printf(e,
                "    NULL,\n};\n\nstatic const char *const %s_symbols[] = {\n",
                f->file_var);
    for (size_t i = 0; i < f->n_symbols; i++)
        emit_printf(e, "    \"%s\",\n", f->symbols[i]);
    emit_printf(e,
                "    NULL,\n};\n\nconst rr_file_desc %s = {\n"
                "    \"%s\", %s_descriptor, %zu, %s_deps, %s_symbols};\n",
                f->file_var, f->proto, f->file_var, f->fdp_len, f->file_var,
                f->file_var);
}

void
gen_source(emit *e, const gen_file *f)
{
    emit_printf(e,
                "/* Generated by protoc-gen-rawrpc from %s.  DO NOT EDIT. "
                "*/\n\n#include \"%s.rr.h\"\n",
                f->proto, f->base);
    source_file_desc(e, f);
    if (f->n_services == 0)
        emit_printf(e, "\n/* %s defines no services. */\n", f->proto);
    for (size_t si = 0; si < f->n_services; si++) {
        const gen_service *s = &f->services[si];
        emit_printf(e, "\n/* ---- service %s ---- */\n", s->full_name);
        for (size_t i = 0; i < s->n_methods; i++) {
            if (!s->methods[i].streaming)
                source_method(e, &s->methods[i]);
        }
        if (s->n_methods > 0)
            source_register(e, s, f->file_var);
    }
}
