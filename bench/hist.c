// SPDX-License-Identifier: MIT
//
// hist.c -- log-linear latency histogram; see hist.h.

#include "hist.h"

// Range r holds [2^(r+7), 2^(r+8)) for r >= 1; range 0 holds [0, 256)
// exactly in steps of 2.
static void
hist_index(uint64_t v, unsigned *r, unsigned *s)
{
    if (v < (uint64_t) 2 * HIST_SUB) {
        *r = 0;
        *s = (unsigned) (v / 2);
        return;
    }
    unsigned top = 63u - (unsigned) __builtin_clzll(v); // v >= 2^top
    *r = top - 7;
    if (*r >= HIST_RANGES) {
        *r = HIST_RANGES - 1;
        *s = HIST_SUB - 1;
        return;
    }
    *s = (unsigned) ((v >> (top - 7)) - HIST_SUB);
}

static uint64_t
hist_value(unsigned r, unsigned s)
{
    if (r == 0)
        return (uint64_t) s * 2 + 1;
    unsigned top = r + 7;
    uint64_t lo = ((uint64_t) HIST_SUB + s) << (top - 7);
    return lo + ((uint64_t) 1 << (top - 7)) / 2; // the bucket's middle
}

void
hist_add(hist *h, uint64_t ns)
{
    unsigned r, s;

    hist_index(ns, &r, &s);
    h->counts[r][s]++;
    h->n++;
    if (ns > h->max)
        h->max = ns;
}

void
hist_merge(hist *into, const hist *from)
{
    for (unsigned r = 0; r < HIST_RANGES; r++) {
        for (unsigned s = 0; s < HIST_SUB; s++)
            into->counts[r][s] += from->counts[r][s];
    }
    into->n += from->n;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t
hist_quantile(const hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t) (q * (double) h->n);
    if (want >= h->n)
        want = h->n - 1;
    uint64_t seen = 0;
    for (unsigned r = 0; r < HIST_RANGES; r++) {
        for (unsigned s = 0; s < HIST_SUB; s++) {
            seen += h->counts[r][s];
            if (seen > want)
                return hist_value(r, s) < h->max ? hist_value(r, s) : h->max;
        }
    }
    return h->max;
}
