// SPDX-License-Identifier: MIT
//
// utf8.c -- well-formed UTF-8 for the strings rawrpc sends; see utf8.h.

#include "codec/utf8.h"

#include <string.h>

// The length of the well-formed character at s[0, len), or 0 if the bytes
// there are not one (RFC 3629, table 3-7 of the Unicode standard).
static size_t
utf8_char(const uint8_t *s, size_t len)
{
    uint8_t b = s[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF; // the range of the second byte

    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0)
            lo = 0xA0; // no overlong forms
        else if (b == 0xED)
            hi = 0x9F; // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F; // nothing above U+10FFFF
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    return n;
}

bool
rr__utf8_valid(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t
rr__utf8_escape(char *dst, size_t cap, const uint8_t *src, size_t len,
                bool controls)
{
    static const char hex[] = "0123456789abcdef";
    size_t out = 0;

    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(src + i, len - i);
        bool esc =
            n == 0 || (controls && n == 1 && (src[i] < 0x20 || src[i] == 0x7F));
        size_t need = esc ? 4 : n;
        if (out + need > cap - 1)
            break;
        if (esc) {
            dst[out++] = '\\';
            dst[out++] = 'x';
            dst[out++] = hex[src[i] >> 4];
            dst[out++] = hex[src[i] & 0xF];
            i++;
        } else {
            memcpy(dst + out, src + i, n);
            out += n;
            i += n;
        }
    }
    dst[out] = '\0';
    return out;
}

size_t
rr__utf8_cut(const char *s, size_t len, size_t max)
{
    const uint8_t *p = (const uint8_t *) s;
    size_t end = 0;

    while (end < len) {
        size_t n = utf8_char(p + end, len - end);
        if (n == 0)
            n = 1;
        if (end + n > max)
            break;
        end += n;
    }
    return end;
}
