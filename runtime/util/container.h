// SPDX-License-Identifier: MIT
//
// container.h -- the struct that holds a member, from the member's
// address: how a libev watcher or an intrusive list node finds its owner.

#ifndef RR_CONTAINER_H
#define RR_CONTAINER_H

#include <stddef.h>

#define RR_CONTAINER_OF(p, type, member)                                       \
    ((type *) (void *) ((char *) (p) -offsetof(type, member)))

#endif // RR_CONTAINER_H
