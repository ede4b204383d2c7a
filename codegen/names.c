// SPDX-License-Identifier: MIT
//
// names.c -- protobuf-c's name mangling; see names.h.

#include "names.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum piece_style { STYLE_CAMEL, STYLE_LOWER, STYLE_UPPER };

// Appends one dotted piece of a full name in the given style.
static size_t
piece_put(char *out, const char *p, size_t n, enum piece_style style)
{
    size_t o = 0;
    bool next_upper = true, was_upper = true; // no leading '_'

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) p[i];
        if (style == STYLE_CAMEL) {
            if (c == '_') {
                next_upper = true;
            } else {
                out[o++] = (char) (next_upper ? toupper(c) : c);
                next_upper = false;
            }
            continue;
        }
        bool is_upper = isupper(c) != 0;
        if (is_upper && !was_upper)
            out[o++] = '_';
        out[o++] = (char) (style == STYLE_LOWER ? tolower(c) : toupper(c));
        was_upper = is_upper;
    }
    return o;
}

static char *
full_name(const char *name, enum piece_style style)
{
    size_t len = strlen(name);
    char *out = malloc(len * 2 + 3); // each char may gain a '_'

    if (out == NULL)
        return NULL;
    size_t o = 0;
    const char *p = name;
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t) (dot - p) : strlen(p);
        if (n > 0) {
            if (o > 0) {
                out[o++] = '_';
                out[o++] = '_';
            }
            o += piece_put(out + o, p, n, style);
        }
        p += n;
        if (*p == '.')
            p++;
    }
    out[o] = '\0';
    return out;
}

char *
names_c(const char *name)
{
    return full_name(name, STYLE_CAMEL);
}

char *
names_lower(const char *name)
{
    return full_name(name, STYLE_LOWER);
}

char *
names_upper(const char *name)
{
    return full_name(name, STYLE_UPPER);
}

char *
names_camel_to_lower(const char *name)
{
    char *out = malloc(strlen(name) * 2 + 1);

    if (out == NULL)
        return NULL;
    out[piece_put(out, name, strlen(name), STYLE_LOWER)] = '\0';
    return out;
}

char *
names_file_id(const char *filename)
{
    char *out = malloc(strlen(filename) * 3 + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (const char *p = filename; *p != '\0'; p++) {
        if (isalnum((unsigned char) *p))
            out[o++] = *p;
        else
            o += (size_t) snprintf(out + o, 4, "_%x", (unsigned char) *p);
    }
    out[o] = '\0';
    return out;
}

char *
names_strip_proto(const char *filename)
{
    size_t n = strlen(filename);
    char *out = strdup(filename);

    if (out != NULL && n > 6 && strcmp(filename + n - 6, ".proto") == 0)
        out[n - 6] = '\0';
    return out;
}

static bool
in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0)
            return true;
    }
    return false;
}

bool
names_is_c_keyword(const char *s)
{
    static const char *const kw[] = {
        "auto",     "break",    "case",     "char",   "const",   "continue",
        "default",  "do",       "double",   "else",   "enum",    "extern",
        "float",    "for",      "goto",     "if",     "inline",  "int",
        "long",     "register", "restrict", "return", "short",   "signed",
        "sizeof",   "static",   "struct",   "switch", "typedef", "union",
        "unsigned", "void",     "volatile", "while",  "bool",    "true",
        "false",
    };

    return in_list(s, kw, sizeof(kw) / sizeof(kw[0]));
}

bool
names_is_keyword(const char *s)
{
    static const char *const cxx[] = {
        "class",    "delete",    "new",   "operator", "private",
        "public",   "template",  "this",  "virtual",  "protected",
        "friend",   "mutable",   "throw", "try",      "catch",
        "typename", "namespace", "using", "explicit", "export",
    };

    return names_is_c_keyword(s) ||
           in_list(s, cxx, sizeof(cxx) / sizeof(cxx[0]));
}
