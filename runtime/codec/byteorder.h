// SPDX-License-Identifier: MIT
//
// byteorder.h -- big-endian loads and stores for the wire format.
//
// Byte-wise on purpose: the header fields are not aligned in the receive
// buffer, and compilers turn these into one load plus a bswap.

#ifndef RR_BYTEORDER_H
#define RR_BYTEORDER_H

#include <stdint.h>

static inline uint16_t
rr__get_be16(const uint8_t *p)
{
    return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}

static inline uint32_t
rr__get_be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
           (uint32_t) p[2] << 8 | p[3];
}

static inline void
rr__put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

static inline void
rr__put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

#endif // RR_BYTEORDER_H
