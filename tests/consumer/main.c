// SPDX-License-Identifier: MIT
//
// main.c -- a user's program, built against an installed rawrpc.  It exits
// non-zero unless the library it runs with answers as its header promises.

#include <stdio.h>
#include <string.h>

#include <rawrpc/rawrpc.h>

int
main(void)
{
    if (strcmp(rr_version(), RAWRPC_VERSION_STRING) != 0 ||
        strcmp(rr_status_name(RR_STATUS_NOT_FOUND), "NOT_FOUND") != 0 ||
        strcmp(rr_strerror(RR_EMSGSIZE), "message exceeds a size limit") != 0)
        return 1;
    printf("consumer: rawrpc %s\n", rr_version());
    return 0;
}
