// SPDX-License-Identifier: MIT
//
// poison.h -- pooled objects are poisoned while they sit in a pool, in
// AddressSanitizer builds, so a use after completion is reported even
// though the memory was never freed (nng and h2o pool the same way).
// Elsewhere the macros cost nothing.

#ifndef RR_POISON_H
#define RR_POISON_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RR_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RR_ASAN 1
#endif

#ifdef RR_ASAN
#include <sanitizer/asan_interface.h>
#define RR_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define RR_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RR_POISON(p, n)   ((void) (p), (void) (n))
#define RR_UNPOISON(p, n) ((void) (p), (void) (n))
#endif

#endif // RR_POISON_H
