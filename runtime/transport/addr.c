// SPDX-License-Identifier: MIT
//
// addr.c -- address strings to sockaddrs and back; see addr.h.

#include "transport/addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "util/errmap.h"
#include "rawrpc/rawrpc.h"

#define UNIX_PREFIX "unix:"

static int
addr_unix(const char *path, rr_addr *out, char *msg, size_t msgsz)
{
    struct sockaddr_un *sun = (struct sockaddr_un *) &out->ss;
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(sun->sun_path)) {
        snprintf(msg, msgsz, "unix socket path of %zu bytes; 1 to %zu fit", n,
                 sizeof(sun->sun_path) - 1);
        return RR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    out->len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
    return RR_OK;
}

// Splits "host:port" or "[host]:port" into host (brackets dropped) and
// the port's digits.
static int
addr_split(const char *s, char *host, size_t hostsz, const char **port,
           char *msg, size_t msgsz)
{
    const char *h = s, *colon;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            snprintf(msg, msgsz, "no closing ']'");
            return RR_EINVAL;
        }
        if (close[1] != ':') {
            snprintf(msg, msgsz, "':' and a port must follow ']'");
            return RR_EINVAL;
        }
        h = s + 1;
        hlen = (size_t) (close - h);
        colon = close + 1;
    } else if ((colon = strrchr(s, ':')) != NULL) {
        hlen = (size_t) (colon - s);
    } else {
        snprintf(msg, msgsz, "not host:port, [v6]:port or unix:/path");
        return RR_EINVAL;
    }
    if (hlen >= hostsz) {
        snprintf(msg, msgsz, "a host of %zu bytes; at most %zu fit", hlen,
                 hostsz - 1);
        return RR_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = colon + 1;
    return RR_OK;
}

// The port's decimal digits, 0 to 65535.
static int
addr_port(const char *p, uint16_t *out, char *msg, size_t msgsz)
{
    unsigned long v = 0;
    size_t n = strspn(p, "0123456789");

    if (*p == '\0') {
        snprintf(msg, msgsz, "no port after the ':'");
        return RR_EINVAL;
    }
    if (p[n] != '\0') {
        snprintf(msg, msgsz, "port \"%s\" is not a number", p);
        return RR_EINVAL;
    }
    for (size_t i = 0; i < n && v <= 65535; i++)
        v = v * 10 + (unsigned long) (p[i] - '0');
    if (v > 65535) {
        snprintf(msg, msgsz, "port %s is out of range (0 to 65535)", p);
        return RR_EINVAL;
    }
    *out = (uint16_t) v;
    return RR_OK;
}

// Parses s; with listening set an empty host is "[::]" and *any is set.
static int
addr_parse(const char *s, rr_addr *out, bool listening, bool *any, char *msg,
           size_t msgsz)
{
    if (strncmp(s, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        return addr_unix(s + strlen(UNIX_PREFIX), out, msg, msgsz);

    char host[256];
    const char *ps;
    uint16_t port;
    int rv;
    if ((rv = addr_split(s, host, sizeof(host), &ps, msg, msgsz)) != RR_OK ||
        (rv = addr_port(ps, &port, msg, msgsz)) != RR_OK)
        return rv;
    if (host[0] == '\0' && listening) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &out->ss;
        memset(out, 0, sizeof(*out));
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_any;
        in6->sin6_port = htons(port);
        out->len = sizeof(*in6);
        *any = true;
        return RR_OK;
    }
    if (host[0] == '\0') {
        snprintf(msg, msgsz, "no host before the ':'");
        return RR_EINVAL;
    }

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    rv = getaddrinfo(host, NULL, &hints, &ai);
    if (rv != 0 || ai == NULL) {
        snprintf(msg, msgsz, "cannot resolve \"%.64s\": %s", host,
                 rv != 0 ? gai_strerror(rv) : "no address");
        if (ai != NULL)
            freeaddrinfo(ai);
        return RR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, ai->ai_addr, ai->ai_addrlen);
    out->len = ai->ai_addrlen;
    freeaddrinfo(ai);
    if (out->ss.ss_family == AF_INET)
        ((struct sockaddr_in *) &out->ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *) &out->ss)->sin6_port = htons(port);
    return RR_OK;
}

static int
addr_parse_named(const char *s, rr_addr *out, bool listening, bool *any,
                 char *msg, size_t msgsz)
{
    char why[160];
    int rv = addr_parse(s, out, listening, any, why, sizeof(why));

    if (rv != RR_OK) {
        snprintf(msg, msgsz, "%.80s: %s", s, why);
        rr__set_last_error("%s", msg);
    }
    return rv;
}

int
rr__addr_parse(const char *s, rr_addr *out, char *msg, size_t msgsz)
{
    bool any = false;

    return addr_parse_named(s, out, false, &any, msg, msgsz);
}

int
rr__addr_parse_listen(const char *s, rr_addr *out, bool *any, char *msg,
                      size_t msgsz)
{
    *any = false;
    return addr_parse_named(s, out, true, any, msg, msgsz);
}

void
rr__addr_any4(rr_addr *a)
{
    uint16_t port = ((const struct sockaddr_in6 *) &a->ss)->sin6_port;
    struct sockaddr_in *in = (struct sockaddr_in *) &a->ss;

    memset(a, 0, sizeof(*a));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    in->sin_port = port;
    a->len = sizeof(*in);
}

void
rr__addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];

    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, n, "%s:%u", ip, (unsigned) ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) { // a dual-stack listener's
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, sizeof(ip));
            snprintf(buf, n, "%s:%u", ip, (unsigned) ntohs(in6->sin6_port));
            break;
        }
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, n, "[%s]:%u", ip, (unsigned) ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *) sa;
        if (len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0])
            snprintf(buf, n, "unix:%s", un->sun_path);
        else
            snprintf(buf, n, "unix:(unnamed)");
        break;
    }
    default:
        snprintf(buf, n, "(family %d)", (int) sa->sa_family);
    }
}
