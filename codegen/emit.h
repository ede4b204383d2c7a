// SPDX-License-Identifier: MIT
//
// emit.h -- a growing text buffer that generated files are printed into.
// Out of memory is remembered and reported once, at the end, so the
// generators need not check every line.

#ifndef RRGEN_EMIT_H
#define RRGEN_EMIT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct emit {
    char *buf;
    size_t len, cap;
    bool oom;
} emit;

void emit_init(emit *e);
void emit_fini(emit *e);

// emit_printf appends formatted text.
__attribute__((format(printf, 2, 3))) void emit_printf(emit *e, const char *fmt,
                                                       ...);

// emit_comment writes text as a C block comment, each line prefixed by
// indent and " * "; "*/" and "/*" inside are defused.  Nothing for "".
void emit_comment(emit *e, const char *indent, const char *text);

#endif // RRGEN_EMIT_H
