// SPDX-License-Identifier: MIT
//
// namehash.h -- the hash of a call's name that rawrpc-fault-server sums
// over the calls it ran and test_fault sums over the calls that
// succeeded.  One definition, so the two processes cannot disagree.
#ifndef RR_FAULT_NAMEHASH_H
#define RR_FAULT_NAMEHASH_H

#include <stdint.h>

// FNV-1a, never 0.
static inline uint64_t
fault_name_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;

    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211u;
    return h ? h : 1;
}

#endif
