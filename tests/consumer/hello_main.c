// SPDX-License-Identifier: MIT
//
// hello_main.c -- one of the targets that each call rawrpc_generate() on
// hello.proto: protoc must run once for them all.

#include <string.h>

#include "hello.rr.h"

int
main(void)
{
    return strcmp(rr_hello__greeter__greet__method.full_name,
                  "/hello.Greeter/Greet") != 0;
}
