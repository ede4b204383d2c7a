// SPDX-License-Identifier: MIT
//
// emit.c -- text buffer for generated files; see emit.h.

#include "emit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
emit_init(emit *e)
{
    e->buf = NULL;
    e->len = e->cap = 0;
    e->oom = false;
}

void
emit_fini(emit *e)
{
    free(e->buf);
    emit_init(e);
}

static bool
emit_reserve(emit *e, size_t n)
{
    if (e->oom)
        return false;
    if (e->len + n + 1 <= e->cap)
        return true;
    size_t cap = e->cap ? e->cap : 4096;
    while (cap < e->len + n + 1)
        cap *= 2;
    char *p = realloc(e->buf, cap);
    if (p == NULL) {
        e->oom = true;
        return false;
    }
    e->buf = p;
    e->cap = cap;
    return true;
}

void
emit_printf(emit *e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !emit_reserve(e, (size_t) n))
        return;
    va_start(ap, fmt);
    vsnprintf(e->buf + e->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    e->len += (size_t) n;
}

void
emit_comment(emit *e, const char *indent, const char *text)
{
    if (text == NULL || *text == '\0')
        return;
    emit_printf(e, "%s/*\n", indent);
    const char *p = text;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t) (nl - p) : strlen(p);
        char line[512];
        if (n >= sizeof(line))
            n = sizeof(line) - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        for (char *q = line; (q = strstr(q, "*/")) != NULL;)
            q[1] = ' '; // "*/" would end our comment
        for (char *q = line; (q = strstr(q, "/*")) != NULL;)
            q[1] = ' ';
        if (line[0] == '\0')
            emit_printf(e, "%s *\n", indent);
        else
            emit_printf(e, "%s *%s%s\n", indent, line[0] == ' ' ? "" : " ",
                        line);
        p += n;
        if (*p == '\n')
            p++;
        else if (nl != NULL)
            p = nl + 1;
    }
    emit_printf(e, "%s */\n", indent);
}
