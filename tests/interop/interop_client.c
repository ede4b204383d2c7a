// SPDX-License-Identifier: MIT
//
// interop_client.c -- rawrpc-interop-client, a C channel (public API
// only) that the Python interop suite points at its own server.
//
//   rawrpc-interop-client [--heartbeat-interval S] [--heartbeat-timeout S]
//       [--max-frame N] [--limit S] ADDR CALL...
//
// Each CALL is a comma-separated list of key=value fields, all optional:
//   m=METHOD     the full method name; default /rrtest.Test/Echo
//   text=TEXT    the request's text (rrtest.Echo); data=N: N bytes of 'd'
//   t=SECONDS    the call's timeout (0: none)
//   meta=KEY:VAL one metadata pair; up to 4 of them
//   at=SECONDS   start the call that long after the program starts
//   hold=1       start the call only when told so on standard input
// Standard input takes commands, one a line: "start I" starts call I
// (given hold=1), "cancel I" cancels it with rr_channel_cancel.  The
// tests use them to act once their server has seen what they wait for.
// Every call's request is a rrtest.Echo and so is its reply.  For each
// finished call it prints, in the order they finish,
//   result I STATUS msg=M text=T data=N
// where I is the call's index in the arguments (from 0), STATUS the
// status name (or "error E" when rr_channel_call refused it), and M and
// T are escaped: bytes outside '!'..'~' and the backslash as \xHH.  Once
// every call has finished it prints "done" and exits 0; after --limit
// seconds (default 20) it prints "limit", frees the channel and exits 3.

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawrpc/rawrpc.h"
#include "testmsg.pb-c.h"

#define MAX_META 4

typedef struct spec {
    int index;
    rr_method method;
    Rrtest__Echo req;
    double timeout, at;
    bool hold;
    rr_metadata meta[MAX_META];
    size_t n_meta;
    uint8_t *data;
    uint64_t token;
    bool started, finished;
    ev_timer start_timer;
    struct prog *prog;
} spec;

typedef struct prog {
    struct ev_loop *loop;
    rr_channel *ch;
    spec *specs;
    int n, finished;
    ev_timer limit;
    ev_io input;
    char line[256];
    size_t line_len;
} prog;

static void
print_escaped(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c > ' ' && c < 0x7f && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
}

static void
finish(spec *s)
{
    prog *p = s->prog;

    s->finished = true;
    if (++p->finished == p->n)
        ev_break(p->loop, EVBREAK_ALL);
}

static void
result_cb(const rr_result *res, void *arg)
{
    spec *s = arg;
    const Rrtest__Echo *r = (const Rrtest__Echo *) res->reply;

    printf("result %d %s msg=", s->index, rr_status_name(res->status));
    print_escaped(res->message, strlen(res->message));
    printf(" text=");
    if (r != NULL && r->text != NULL)
        print_escaped(r->text, strlen(r->text));
    printf(" data=%zu\n", r != NULL ? r->data.len : 0);
    fflush(stdout);
    finish(s);
}

static void
start(spec *s)
{
    prog *p = s->prog;
    rr_call_opts opts = {0};
    int err;

    s->started = true;
    opts.timeout = s->timeout;
    opts.metadata = s->n_meta > 0 ? s->meta : NULL;
    opts.n_metadata = s->n_meta;
    err = rr_channel_call(p->ch, &s->method, &s->req.base, &opts, result_cb, s,
                          &s->token);
    if (err != RR_OK) {
        printf("result %d error %s\n", s->index, rr_strerror(err));
        fflush(stdout);
        finish(s);
    }
}

static void
start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    start(w->data);
}

// Runs one command line from standard input: "start I" or "cancel I".
static void
command(prog *p, const char *line)
{
    const char *space = strchr(line, ' ');
    char *end = NULL;
    long i = space != NULL ? strtol(space + 1, &end, 10) : -1;
    spec *s;

    if (space == NULL || end == space + 1 || *end != '\0' || i < 0 ||
        i >= p->n) {
        fprintf(stderr, "rawrpc-interop-client: bad command %s\n", line);
        return;
    }
    s = &p->specs[i];
    if (strncmp(line, "start ", 6) == 0 && !s->started)
        start(s);
    else if (strncmp(line, "cancel ", 7) == 0 && s->started && !s->finished)
        rr_channel_cancel(p->ch, s->token);
}

static void
input_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) revents;
    prog *p = w->data;
    ssize_t n =
        read(w->fd, p->line + p->line_len, sizeof(p->line) - 1 - p->line_len);
    char *nl;

    if (n <= 0) {
        ev_io_stop(loop, w);
        return;
    }
    p->line_len += (size_t) n;
    while ((nl = memchr(p->line, '\n', p->line_len)) != NULL) {
        size_t used = (size_t) (nl - p->line) + 1;
        *nl = '\0';
        command(p, p->line);
        memmove(p->line, nl + 1, p->line_len - used);
        p->line_len -= used;
    }
    if (p->line_len == sizeof(p->line) - 1)
        p->line_len = 0; // an overlong line is dropped
}

static void
limit_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    (void) w;
    printf("limit\n");
    fflush(stdout);
    ev_break(loop, EVBREAK_ALL);
}

static bool
parse_number(const char *s, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || v < 0)
        return false;
    *out = v;
    return true;
}

// Parses one CALL argument in place (it cuts argv's string at the commas).
static bool
parse_spec(spec *s, char *arg)
{
    static char echo_method[] = "/rrtest.Test/Echo";
    static char empty[] = "";
    char *field = arg;

    s->method.full_name = echo_method;
    s->method.input = &rrtest__echo__descriptor;
    s->method.output = &rrtest__echo__descriptor;
    rrtest__echo__init(&s->req);
    s->req.text = empty;
    while (field != NULL) {
        char *next = strchr(field, ',');
        char *eq;
        double n = 0;

        if (next != NULL)
            *next++ = '\0';
        eq = strchr(field, '=');
        if (*field == '\0') {
            field = next;
            continue;
        }
        if (eq == NULL)
            return false;
        *eq++ = '\0';
        if (strcmp(field, "m") == 0) {
            s->method.full_name = eq;
        } else if (strcmp(field, "text") == 0) {
            s->req.text = eq;
        } else if (strcmp(field, "data") == 0) {
            if (!parse_number(eq, &n) || s->data != NULL)
                return false;
            s->data = malloc((size_t) n + 1);
            if (s->data == NULL)
                return false;
            memset(s->data, 'd', (size_t) n);
            s->req.data.data = s->data;
            s->req.data.len = (size_t) n;
        } else if (strcmp(field, "t") == 0) {
            if (!parse_number(eq, &s->timeout))
                return false;
        } else if (strcmp(field, "at") == 0) {
            if (!parse_number(eq, &s->at))
                return false;
        } else if (strcmp(field, "hold") == 0) {
            s->hold = strcmp(eq, "0") != 0;
        } else if (strcmp(field, "meta") == 0) {
            char *colon = strchr(eq, ':');
            if (colon == NULL || s->n_meta == MAX_META)
                return false;
            *colon++ = '\0';
            s->meta[s->n_meta].key = eq;
            s->meta[s->n_meta].value = (const uint8_t *) colon;
            s->meta[s->n_meta].value_len = strlen(colon);
            s->n_meta++;
        } else {
            return false;
        }
        field = next;
    }
    return true;
}

static int
run(prog *p, const char *addr, const rr_channel_opts *o, double limit)
{
    if (rr_channel_new(&p->ch, p->loop, addr, o) != RR_OK) {
        fprintf(stderr, "rawrpc-interop-client: bad address %s\n", addr);
        return 2;
    }
    ev_timer_init(&p->limit, limit_cb, limit, 0.);
    ev_timer_start(p->loop, &p->limit);
    ev_io_init(&p->input, input_cb, STDIN_FILENO, EV_READ);
    p->input.data = p;
    ev_io_start(p->loop, &p->input);
    for (int i = 0; i < p->n; i++) {
        spec *s = &p->specs[i];
        if (s->hold) {
            continue;
        } else if (s->at > 0) {
            ev_timer_init(&s->start_timer, start_cb, s->at, 0.);
            s->start_timer.data = s;
            ev_timer_start(p->loop, &s->start_timer);
        } else {
            start(s);
        }
    }
    if (p->finished < p->n)
        ev_run(p->loop, 0);
    ev_timer_stop(p->loop, &p->limit);
    ev_io_stop(p->loop, &p->input);
    for (int i = 0; i < p->n; i++)
        ev_timer_stop(p->loop, &p->specs[i].start_timer);
    bool all = p->finished == p->n;
    rr_channel_free(p->ch); // completes what is left: UNAVAILABLE
    if (all) {
        printf("done\n");
        fflush(stdout);
    }
    return all ? 0 : 3;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"heartbeat-interval", required_argument, NULL, 'i'},
        {"heartbeat-timeout", required_argument, NULL, 't'},
        {"max-frame", required_argument, NULL, 'f'},
        {"limit", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    rr_channel_opts o;
    prog p = {0};
    double limit = 20, frame = 0;
    bool ok = true;
    int c, status;

    rr_channel_opts_init(&o);
    rr_log_set(NULL, NULL, RR_LOG_WARN);
    while (ok && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            ok = parse_number(optarg, &o.heartbeat_interval);
            break;
        case 't':
            ok = parse_number(optarg, &o.heartbeat_timeout);
            break;
        case 'f':
            ok = parse_number(optarg, &frame) && frame <= UINT32_MAX;
            o.max_frame_size = (uint32_t) frame;
            break;
        case 'l':
            ok = parse_number(optarg, &limit);
            break;
        default:
            ok = false;
        }
    }
    if (!ok || argc - optind < 1) {
        fprintf(stderr, "usage: see tests/interop/interop_client.c\n");
        return 2;
    }
    p.loop = EV_DEFAULT;
    p.n = argc - optind - 1;
    p.specs = calloc((size_t) p.n + 1, sizeof(*p.specs));
    if (p.specs == NULL)
        return 1;
    for (int i = 0; ok && i < p.n; i++) {
        p.specs[i].index = i;
        p.specs[i].prog = &p;
        ev_timer_init(&p.specs[i].start_timer, start_cb, 0., 0.);
        ok = parse_spec(&p.specs[i], argv[optind + 1 + i]);
        if (!ok)
            fprintf(stderr, "rawrpc-interop-client: bad call %d\n", i);
    }
    status = ok ? run(&p, argv[optind], &o, limit) : 2;
    for (int i = 0; i < p.n; i++)
        free(p.specs[i].data);
    free(p.specs);
    ev_loop_destroy(p.loop);
    return status;
}
