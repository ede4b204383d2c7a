// SPDX-License-Identifier: MIT
//
// utf8.h -- the text rawrpc puts in protobuf `string` fields is UTF-8.
//
// Status messages and GOAWAY messages often quote bytes a peer sent (an
// unknown method name, say), and proto3 decoders in other languages reject
// a whole message whose string field is not UTF-8 (docs/PROTOCOL.md,
// section 5.2).  These functions copy such bytes with every ill-formed
// sequence escaped as "\xHH", and cut text only between characters.  Pure
// functions: no allocation, no I/O.

#ifndef RR_UTF8_H
#define RR_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The longest status message rawrpc sends, in bytes (PROTOCOL.md 5.2).
#define RR_STATUS_MESSAGE_MAX 1024

// rr__utf8_valid tells whether len bytes at s are well-formed UTF-8 (RFC
// 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
bool rr__utf8_valid(const uint8_t *s, size_t len);

// rr__utf8_escape copies len bytes at src into dst (cap bytes, cap >= 1)
// as well-formed UTF-8: well-formed characters as they are, and each byte
// of an ill-formed sequence as the four characters "\xHH".  With controls
// true, ASCII control bytes (below 0x20, and 0x7F) are escaped too, which
// is how names a peer sent are quoted.  It stops before the first
// character or escape that would not fit in cap - 1 bytes, so the output
// never ends inside either; dst is NUL-terminated.  Returns the bytes
// written, without the NUL.
size_t rr__utf8_escape(char *dst, size_t cap, const uint8_t *src, size_t len,
                       bool controls);

// rr__utf8_cut returns the largest n <= max and <= len such that the
// first n bytes of s end on a character boundary.  s should be
// well-formed; an ill-formed tail is cut as if each byte were a character.
size_t rr__utf8_cut(const char *s, size_t len, size_t max);

#endif // RR_UTF8_H
