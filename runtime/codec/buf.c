// SPDX-License-Identifier: MIT
//
// buf.c -- capped growable byte buffer; see buf.h.
//
// Consuming only moves the head; the bytes are moved to the front lazily,
// when the tail has no room, so draining many small frames from a large
// read costs one memmove at most per refill instead of one per frame.

#include "codec/buf.h"

#include <stdlib.h>
#include <string.h>

#include "rawrpc/rawrpc.h"

#define BUF_MIN_CAP 256

void
rr__buf_init(rr_buf *b, size_t max)
{
    b->data = NULL;
    b->head = 0;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void
rr__buf_fini(rr_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    rr__buf_init(b, b->max);
}

// Grows the allocation to hold at least need bytes: doubling, so appends
// are amortised O(1), but never past the cap.
static int
buf_grow(rr_buf *b, size_t need)
{
    size_t cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;

    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max)
        cap = b->max; // need <= max: rr__buf_reserve checked it
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return RR_ENOMEM;
    b->data = p;
    b->cap = cap;
    return RR_OK;
}

int
rr__buf_reserve_slow(rr_buf *b, size_t n, uint8_t **out)
{
    size_t used = b->len - b->head;

    if (n > b->max - used)
        return RR_ENOBUFS;
    if (b->cap - b->len < n) {
        if (b->head > 0) {
            memmove(b->data, b->data + b->head, used);
            b->head = 0;
            b->len = used;
        }
        if (b->cap - b->len < n) {
            int rv = buf_grow(b, used + n);
            if (rv != RR_OK)
                return rv;
        }
    }
    *out = b->data + b->len;
    return RR_OK;
}

int
rr__buf_append(rr_buf *b, const void *p, size_t n)
{
    uint8_t *dst;
    int rv = rr__buf_reserve(b, n, &dst);

    if (rv != RR_OK)
        return rv;
    if (n > 0)
        memcpy(dst, p, n);
    b->len += n;
    return RR_OK;
}

void
rr__buf_consume(rr_buf *b, size_t n)
{
    b->head += n;
    if (b->head >= b->len)
        b->head = b->len = 0;
}

void
rr__buf_release(rr_buf *b)
{
    if (rr__buf_size(b) != 0)
        return;
    free(b->data);
    b->data = NULL;
    b->cap = 0;
    b->head = b->len = 0;
}
