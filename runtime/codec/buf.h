// SPDX-License-Identifier: MIT
//
// buf.h -- a growable byte buffer with a hard cap (after curl's dynbuf).
//
// Bytes are appended at the tail and consumed from the head, so the same
// type serves as a receive buffer (read into the tail, decode frames from
// the head) and as an output buffer (frames encoded at the tail, written
// from the head).  The cap bounds the bytes held, never more: a peer can
// make a connection's buffer grow only up to it.

#ifndef RR_BUF_H
#define RR_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "rawrpc/rawrpc.h"

typedef struct rr_buf {
    uint8_t *data; // owned; NULL until the first reserve
    size_t head;   // first unconsumed byte
    size_t len;    // one past the last valid byte
    size_t cap;    // bytes allocated at data
    size_t max;    // most bytes the buffer may hold (len - head)
} rr_buf;

// rr__buf_init makes an empty buffer that will hold at most max bytes.  It
// allocates nothing and cannot fail.
void rr__buf_init(rr_buf *b, size_t max);

// rr__buf_fini frees the buffer's memory.  NULL is a no-op; the buffer may
// be used again after rr__buf_init.
void rr__buf_fini(rr_buf *b);

// rr__buf_reserve makes room for n more bytes at the tail and sets *out to
// it; the bytes count only after rr__buf_commit.  Returns RR_OK,
// RR_ENOBUFS when the buffer would hold more than its cap (nothing is
// allocated), or RR_ENOMEM.  Pointers into the buffer are invalidated.
// Inline when the tail has room: every frame encoded takes this path.
int rr__buf_reserve_slow(rr_buf *b, size_t n, uint8_t **out);

static inline int
rr__buf_reserve(rr_buf *b, size_t n, uint8_t **out)
{
    if (b->cap - b->len >= n && n <= b->max - (b->len - b->head)) {
        *out = b->data + b->len;
        return RR_OK;
    }
    return rr__buf_reserve_slow(b, n, out);
}

// rr__buf_commit adds n bytes, written after a reserve of at least n.
static inline void
rr__buf_commit(rr_buf *b, size_t n)
{
    b->len += n;
}

// rr__buf_append copies n bytes to the tail.  Errors as rr__buf_reserve.
int rr__buf_append(rr_buf *b, const void *p, size_t n);

// rr__buf_consume drops n bytes (at most rr__buf_size) from the head.
void rr__buf_consume(rr_buf *b, size_t n);

// rr__buf_release frees the memory of an empty buffer, so an idle
// connection holds no buffer at all.  A non-empty buffer is left alone.
void rr__buf_release(rr_buf *b);

static inline const uint8_t *
rr__buf_data(const rr_buf *b)
{
    // An empty buffer may have no allocation: NULL + 0 is undefined in C.
    return b->data != NULL ? b->data + b->head : NULL;
}

static inline size_t
rr__buf_size(const rr_buf *b)
{
    return b->len - b->head;
}

#endif // RR_BUF_H
