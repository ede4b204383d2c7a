// SPDX-License-Identifier: MIT
//
// addr.c -- address strings to sockaddrs and back; see addr.h.

#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

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

int
rr__addr_parse(const char *s, rr_addr *out, char *msg, size_t msgsz)
{
    if (strncmp(s, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        return addr_unix(s + strlen(UNIX_PREFIX), out, msg, msgsz);

    char host[256];
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hlen = colon != NULL ? (size_t) (colon - s) : 0;
    if (colon == NULL || colon[1] == '\0') {
        snprintf(msg, msgsz, "\"%s\" is not host:port or unix:/path", s);
        return RR_EINVAL;
    }
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        snprintf(msg, msgsz, "\"%s\" has no usable host", s);
        return RR_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535) {
        snprintf(msg, msgsz, "\"%s\" has a bad port", s);
        return RR_EINVAL;
    }

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rv = getaddrinfo(host, NULL, &hints, &ai);
    if (rv != 0 || ai == NULL) {
        snprintf(msg, msgsz, "cannot resolve \"%s\": %s", host,
                 gai_strerror(rv));
        return RR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, ai->ai_addr, ai->ai_addrlen);
    out->len = ai->ai_addrlen;
    freeaddrinfo(ai);
    if (out->ss.ss_family == AF_INET)
        ((struct sockaddr_in *) &out->ss)->sin_port = htons((uint16_t) port);
    else
        ((struct sockaddr_in6 *) &out->ss)->sin6_port = htons((uint16_t) port);
    return RR_OK;
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
