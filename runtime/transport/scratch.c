// SPDX-License-Identifier: MIT
//
// scratch.c -- the per-loop read buffers; see scratch.h.

#include "transport/scratch.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

// Every loop's buffer; the lock is taken only to get or free one.
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static rr_scratch *scratch_list;

rr_scratch *
rr__scratch_get(struct ev_loop *loop)
{
    rr_scratch *s;

    pthread_mutex_lock(&scratch_mu);
    for (s = scratch_list; s != NULL; s = s->next) {
        // One whose count reached 0 is about to be freed: not reusable.
        unsigned n = atomic_load(&s->refs);
        if (s->loop == loop && n > 0 &&
            atomic_compare_exchange_strong(&s->refs, &n, n + 1))
            break;
    }
    if (s == NULL && (s = malloc(sizeof(*s) + RR_SCRATCH_SIZE)) != NULL) {
        s->loop = loop;
        atomic_init(&s->refs, 1);
        s->busy = false;
        ev_prepare_init(&s->flush, NULL);
        ev_set_priority(&s->flush, EV_MINPRI);
        s->flush_head = NULL;
        s->next = scratch_list;
        scratch_list = s;
    }
    pthread_mutex_unlock(&scratch_mu);
    return s;
}

void
rr__scratch_unref(rr_scratch *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    pthread_mutex_lock(&scratch_mu);
    for (rr_scratch **pp = &scratch_list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&scratch_mu);
    // Every connection leaves the list when it closes, and its owner
    // holds a reference until then: nothing is queued, nothing watches.
    assert(s->flush_head == NULL && !ev_is_pending(&s->flush));
    free(s);
}
