// SPDX-License-Identifier: MIT
//
// test_services.c -- echo, health and kv, tested the way a user tests a
// service: rawrpc/testing.h's kit, generated typed calls, and
// rawrpc_add_test() running it all under valgrind.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <rawrpc/testing.h>

#include "echo/echo.h"
#include "echo/echo.rr.h"
#include "health/health.h"
#include "health/health.rr.h"
#include "kv/kv.h"
#include "kv/kv.rr.h"

typedef struct services {
    rr_testkit *kit;
    rr_kv *kv;
    rr_health *health;
    rr_channel *ch;
} services;

static int
setup(void **state)
{
    services *s = calloc(1, sizeof(*s));

    if (s == NULL || rr_testkit_new(&s->kit, NULL, NULL) != RR_OK) {
        free(s);
        return -1;
    }
    rr_server *srv = rr_testkit_server(s->kit);
    if (rr_kv_new(&s->kv, rr_testkit_loop(s->kit)) != RR_OK ||
        rr_health_new(&s->health) != RR_OK ||
        rr_kv_register(srv, s->kv) != RR_OK ||
        rr_health_register(srv, s->health) != RR_OK ||
        rr_echo_register(srv) != RR_OK) {
        rr_testkit_free(s->kit); // teardown will not run
        rr_kv_free(s->kv);
        rr_health_free(s->health);
        free(s);
        return -1;
    }
    s->ch = rr_testkit_channel(s->kit);
    *state = s;
    return 0;
}

static int
teardown(void **state)
{
    services *s = *state;

    // The server goes first (with the kit): it cancels any sleeping call,
    // whose handler frees its sleeper; then the store.
    int rv = rr_testkit_free(s->kit);
    rr_kv_free(s->kv);
    rr_health_free(s->health);
    free(s);
    return rv == RR_OK ? 0 : -1; // a leaked descriptor fails the test
}

static void
test_services_echo(void **state)
{
    services *s = *state;
    Rawrpc__Echo__EchoRequest req = RAWRPC__ECHO__ECHO_REQUEST__INIT;
    Rawrpc__Echo__EchoReply *r = NULL;
    uint8_t payload[4096];

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t) i;
    req.payload.data = payload;
    req.payload.len = sizeof(payload);
    assert_int_equal(
        rr_rawrpc__echo__echo__echo__sync(s->ch, &req, NULL, &r, NULL),
        RR_STATUS_OK);
    assert_int_equal(r->payload.len, sizeof(payload));
    assert_memory_equal(r->payload.data, payload, sizeof(payload));
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static rr_status
check(services *s, const char *name, int *status)
{
    Rawrpc__Health__V1__HealthCheckRequest req =
        RAWRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Rawrpc__Health__V1__HealthCheckResponse *r = NULL;
    char buf[64];

    snprintf(buf, sizeof(buf), "%s", name);
    req.service = buf;
    rr_status st =
        rr_rawrpc__health__v1__health__check__sync(s->ch, &req, NULL, &r, NULL);
    if (r != NULL) {
        *status = (int) r->status;
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    return st;
}

static void
test_services_health(void **state)
{
    services *s = *state;
    int status = -1;

    assert_int_equal(check(s, "", &status), RR_STATUS_OK);
    assert_int_equal(status, RR_HEALTH_SERVING); // the whole server
    assert_int_equal(check(s, "rawrpc.kv.Kv", &status), RR_STATUS_NOT_FOUND);
    assert_int_equal(
        rr_health_set(s->health, "rawrpc.kv.Kv", RR_HEALTH_SERVING), RR_OK);
    assert_int_equal(check(s, "rawrpc.kv.Kv", &status), RR_STATUS_OK);
    assert_int_equal(status, RR_HEALTH_SERVING);
    // The server flips it, the next Check sees it.
    rr_health_set(s->health, "rawrpc.kv.Kv", RR_HEALTH_NOT_SERVING);
    assert_int_equal(check(s, "rawrpc.kv.Kv", &status), RR_STATUS_OK);
    assert_int_equal(status, RR_HEALTH_NOT_SERVING);
}

static rr_status
put(services *s, const char *key, const char *value)
{
    Rawrpc__Kv__PutRequest req = RAWRPC__KV__PUT_REQUEST__INIT;
    char k[64];

    snprintf(k, sizeof(k), "%s", key);
    req.key = k;
    req.value.data = (uint8_t *) (uintptr_t) value;
    req.value.len = strlen(value);
    return rr_rawrpc__kv__kv__put__sync(s->ch, &req, NULL, NULL, NULL);
}

static rr_status
get(services *s, const char *key, char *out, size_t n)
{
    Rawrpc__Kv__GetRequest req = RAWRPC__KV__GET_REQUEST__INIT;
    Rawrpc__Kv__GetReply *r = NULL;
    char k[64];

    snprintf(k, sizeof(k), "%s", key);
    req.key = k;
    rr_status st = rr_rawrpc__kv__kv__get__sync(s->ch, &req, NULL, &r, NULL);
    if (r != NULL) {
        snprintf(out, n, "%.*s", (int) r->value.len,
                 (const char *) r->value.data);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    return st;
}

static void
test_services_kv_crud(void **state)
{
    services *s = *state;
    char v[64];
    Rawrpc__Kv__DeleteRequest del = RAWRPC__KV__DELETE_REQUEST__INIT;
    char k[] = "b";
    char *msg = NULL;

    assert_int_equal(get(s, "b", v, sizeof(v)), RR_STATUS_NOT_FOUND);
    assert_int_equal(put(s, "b", "2"), RR_STATUS_OK);
    assert_int_equal(put(s, "a", "1"), RR_STATUS_OK);
    assert_int_equal(put(s, "b", "two"), RR_STATUS_OK); // replaces
    assert_int_equal(get(s, "b", v, sizeof(v)), RR_STATUS_OK);
    assert_string_equal(v, "two");
    assert_int_equal(get(s, "a", v, sizeof(v)), RR_STATUS_OK);
    assert_string_equal(v, "1");
    del.key = k;
    assert_int_equal(
        rr_rawrpc__kv__kv__delete__sync(s->ch, &del, NULL, NULL, NULL),
        RR_STATUS_OK);
    assert_int_equal(
        rr_rawrpc__kv__kv__delete__sync(s->ch, &del, NULL, NULL, &msg),
        RR_STATUS_NOT_FOUND);
    assert_string_equal(msg, "no such key");
    free(msg);
    assert_int_equal(get(s, "b", v, sizeof(v)), RR_STATUS_NOT_FOUND);
}

static void
test_services_kv_list_pages(void **state)
{
    services *s = *state;
    char key[32], seen[64][32];
    size_t n_seen = 0;
    char prefix[] = "user/";
    char *token = NULL;

    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof(key), "user/%02d", i);
        assert_int_equal(put(s, key, "x"), RR_STATUS_OK);
    }
    assert_int_equal(put(s, "other", "y"), RR_STATUS_OK);
    assert_int_equal(put(s, "user", "z"), RR_STATUS_OK); // not "user/"
    do {
        Rawrpc__Kv__ListRequest req = RAWRPC__KV__LIST_REQUEST__INIT;
        Rawrpc__Kv__ListReply *r = NULL;
        req.prefix = prefix;
        req.page_size = 10;
        req.page_token = token != NULL ? token : prefix + 5; // ""
        assert_int_equal(
            rr_rawrpc__kv__kv__list__sync(s->ch, &req, NULL, &r, NULL),
            RR_STATUS_OK);
        free(token);
        token = NULL;
        assert_true(r->n_entries <= 10);
        for (size_t i = 0; i < r->n_entries; i++)
            snprintf(seen[n_seen++], 32, "%s", r->entries[i]->key);
        if (r->next_page_token[0] != '\0')
            token = strdup(r->next_page_token);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } while (token != NULL && n_seen < 64);
    assert_int_equal(n_seen, 25); // three pages: 10, 10, 5
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof(key), "user/%02d", i);
        assert_string_equal(seen[i], key); // in order, none twice
    }
}

static void
test_services_kv_sleep_and_deadline(void **state)
{
    services *s = *state;
    Rawrpc__Kv__SleepRequest req = RAWRPC__KV__SLEEP_REQUEST__INIT;
    Rawrpc__Kv__SleepReply *r = NULL;
    rr_call_opts short_deadline = {.timeout = 0.05};

    req.ms = 20;
    assert_int_equal(
        rr_rawrpc__kv__kv__sleep__sync(s->ch, &req, NULL, &r, NULL),
        RR_STATUS_OK);
    assert_int_equal(r->slept_ms, 20);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    // The deadline passes first: the client gets DEADLINE_EXCEEDED and the
    // server's sleeper is cancelled and freed (valgrind checks).
    req.ms = 5000;
    assert_int_equal(rr_rawrpc__kv__kv__sleep__sync(
                         s->ch, &req, &short_deadline, NULL, NULL),
                     RR_STATUS_DEADLINE_EXCEEDED);
    req.ms = 60001;
    assert_int_equal(
        rr_rawrpc__kv__kv__sleep__sync(s->ch, &req, NULL, NULL, NULL),
        RR_STATUS_INVALID_ARGUMENT);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_services_echo),
        T(test_services_health),
        T(test_services_kv_crud),
        T(test_services_kv_list_pages),
        T(test_services_kv_sleep_and_deadline),
    };
#undef T
    return cmocka_run_group_tests_name("services", tests, NULL, NULL);
}
