// SPDX-License-Identifier: MIT
//
// guard.c -- inputs flush against a PROT_NONE page; see guard.h.

#include "guard.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_MAX_INPUT ((size_t) 64 * 1024)

int
rr_guard_copy(rr_guard *g, const void *src, size_t len)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page;

    if (len > GUARD_MAX_INPUT)
        return -1;
    g->size = (pages + 1) * page;
    g->map = mmap(NULL, g->size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED)
        return -1;
    if (mprotect(g->map + pages * page, page, PROT_NONE) != 0) {
        munmap(g->map, g->size);
        return -1;
    }
    g->data = g->map + pages * page - len;
    if (len > 0)
        memcpy(g->data, src, len);
    return 0;
}

void
rr_guard_free(rr_guard *g)
{
    if (g->map != NULL)
        munmap(g->map, g->size);
    g->map = NULL;
}
