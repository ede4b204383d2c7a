// SPDX-License-Identifier: MIT
//
// rawrpc-kv -- a command-line client of rawrpc-kv-server.
//
//   rawrpc-kv [--host H] [--port P] [--target ADDR] [--deadline-ms MS]
//             [--log-level L] CMD
//   CMD: put KEY VALUE | get KEY | del KEY | list [PREFIX] | sleep MS |
//        health [SERVICE]
//
// --target takes a whole address ("host:port", "[v6]:port",
// "unix:/path") instead of --host and --port (the last given wins).  health
// asks any server that serves rawrpc.health.v1.Health, not only
// rawrpc-kv-server.
//
// A failed call prints "STATUS_NAME: message" on stderr and exits 1; a
// usage error exits 2.

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health/health.rr.h"
#include "kv/kv.rr.h"

static void
usage(FILE *fp)
{
    fprintf(fp, "usage: rawrpc-kv [--host H] [--port P] [--target ADDR] "
                "[--deadline-ms MS] [--log-level L] CMD\n"
                "  put KEY VALUE | get KEY | del KEY | list [PREFIX] |\n"
                "  sleep MS | health [SERVICE]\n");
}

static int
failed(rr_status st, char *msg)
{
    fprintf(stderr, "%s: %s\n", rr_status_name(st), msg ? msg : "");
    free(msg);
    return 1;
}

static int
cmd_list(rr_channel *ch, const rr_call_opts *o, char *prefix)
{
    Rawrpc__Kv__ListRequest req = RAWRPC__KV__LIST_REQUEST__INIT;
    char *token = NULL;

    req.prefix = prefix;
    do {
        Rawrpc__Kv__ListReply *r = NULL;
        char *msg = NULL;
        req.page_token = token != NULL ? token : (char *) "";
        rr_status st = rr_rawrpc__kv__kv__list__sync(ch, &req, o, &r, &msg);
        free(token);
        token = NULL;
        if (st != RR_STATUS_OK)
            return failed(st, msg);
        free(msg);
        for (size_t i = 0; i < r->n_entries; i++)
            printf("%s=%.*s\n", r->entries[i]->key,
                   (int) r->entries[i]->value.len,
                   (const char *) r->entries[i]->value.data);
        if (r->next_page_token[0] != '\0')
            token = strdup(r->next_page_token);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } while (token != NULL);
    return 0;
}

static int
run(rr_channel *ch, const rr_call_opts *o, int argc, char **argv)
{
    const char *cmd = argv[0];
    char *msg = NULL;
    rr_status st;

    if (strcmp(cmd, "put") == 0 && argc == 3) {
        Rawrpc__Kv__PutRequest req = RAWRPC__KV__PUT_REQUEST__INIT;
        Rawrpc__Kv__PutReply *r = NULL;
        req.key = argv[1];
        req.value.data = (uint8_t *) argv[2];
        req.value.len = strlen(argv[2]);
        if ((st = rr_rawrpc__kv__kv__put__sync(ch, &req, o, &r, &msg)) !=
            RR_STATUS_OK)
            return failed(st, msg);
        printf("%s %s\n", r->created ? "created" : "updated", argv[1]);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } else if (strcmp(cmd, "get") == 0 && argc == 2) {
        Rawrpc__Kv__GetRequest req = RAWRPC__KV__GET_REQUEST__INIT;
        Rawrpc__Kv__GetReply *r = NULL;
        req.key = argv[1];
        if ((st = rr_rawrpc__kv__kv__get__sync(ch, &req, o, &r, &msg)) !=
            RR_STATUS_OK)
            return failed(st, msg);
        printf("%.*s\n", (int) r->value.len, (const char *) r->value.data);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } else if (strcmp(cmd, "del") == 0 && argc == 2) {
        Rawrpc__Kv__DeleteRequest req = RAWRPC__KV__DELETE_REQUEST__INIT;
        req.key = argv[1];
        if ((st = rr_rawrpc__kv__kv__delete__sync(ch, &req, o, NULL, &msg)) !=
            RR_STATUS_OK)
            return failed(st, msg);
        printf("deleted %s\n", argv[1]);
    } else if (strcmp(cmd, "list") == 0 && argc <= 2) {
        char empty[] = "";
        free(msg);
        return cmd_list(ch, o, argc == 2 ? argv[1] : empty);
    } else if (strcmp(cmd, "sleep") == 0 && argc == 2) {
        Rawrpc__Kv__SleepRequest req = RAWRPC__KV__SLEEP_REQUEST__INIT;
        Rawrpc__Kv__SleepReply *r = NULL;
        req.ms = (uint32_t) strtoul(argv[1], NULL, 10);
        if ((st = rr_rawrpc__kv__kv__sleep__sync(ch, &req, o, &r, &msg)) !=
            RR_STATUS_OK)
            return failed(st, msg);
        printf("slept %u ms\n", (unsigned) r->slept_ms);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } else if (strcmp(cmd, "health") == 0 && argc <= 2) {
        Rawrpc__Health__V1__HealthCheckRequest req =
            RAWRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        Rawrpc__Health__V1__HealthCheckResponse *r = NULL;
        static const char *const names[] = {"UNKNOWN", "SERVING",
                                            "NOT_SERVING"};
        char empty[] = "";
        req.service = argc == 2 ? argv[1] : empty;
        if ((st = rr_rawrpc__health__v1__health__check__sync(
                 ch, &req, o, &r, &msg)) != RR_STATUS_OK)
            return failed(st, msg);
        printf("%s\n", (unsigned) r->status < 3 ? names[r->status] : "?");
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } else {
        usage(stderr);
        return 2;
    }
    free(msg);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "7411";
    bool whole = false; // host is a whole address (--target)
    double deadline_ms = 0;
    rr_log_level level = RR_LOG_WARN;
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"target", required_argument, NULL, 't'},
        {"deadline-ms", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            host = optarg;
            whole = false;
            break;
        case 'p':
            port = optarg;
            whole = false;
            break;
        case 't':
            host = optarg;
            whole = true;
            break;
        case 'd':
            deadline_ms = strtod(optarg, NULL);
            break;
        case 'l':
            if (rr_log_level_parse(optarg, &level) != RR_OK) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    rr_log_set(NULL, NULL, level);

    char target[300];
    if (whole)
        snprintf(target, sizeof(target), "%s", host);
    else
        snprintf(target, sizeof(target),
                 strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    rr_channel_opts co;
    rr_channel_opts_init(&co);
    co.connect_timeout = 5.0;
    rr_channel *ch = NULL;
    if (loop == NULL || rr_channel_new(&ch, loop, target, &co) != RR_OK) {
        fprintf(stderr, "rawrpc-kv: bad target %s\n", target);
        return 2;
    }
    rr_call_opts o = {.timeout = deadline_ms / 1000.0};
    int rv = run(ch, &o, argc - optind, argv + optind);
    rr_channel_free(ch);
    ev_loop_destroy(loop);
    return rv;
}
