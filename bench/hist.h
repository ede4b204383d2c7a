// SPDX-License-Identifier: MIT
//
// hist.h -- a latency histogram with under 1 % relative error: values
// (nanoseconds) fall in power-of-two ranges, each cut into 128 equal
// buckets, so a bucket is at most 1/128 of its value wide.

#ifndef RRB_HIST_H
#define RRB_HIST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HIST_SUB    128
#define HIST_RANGES 40 // up to 2^40 ns, about 18 minutes

typedef struct hist {
    uint64_t counts[HIST_RANGES][HIST_SUB];
    uint64_t n;
    uint64_t max;
} hist;

void hist_add(hist *h, uint64_t ns);
// hist_merge adds from into into.
void hist_merge(hist *into, const hist *from);
// hist_quantile returns the value at quantile q (0..1), in ns.
uint64_t hist_quantile(const hist *h, double q);

#ifdef __cplusplus
}
#endif

#endif // RRB_HIST_H
