// SPDX-License-Identifier: MIT
//
// greeter.h -- the greeter.v1.Greeter service: its handlers, registered
// on a server in one call.

#ifndef GREETER_H
#define GREETER_H

#include <rawrpc/rawrpc.h>

#include "greeter/v1/greeter.rr.h"

// greeter_register serves greeter.v1.Greeter on srv.
int greeter_register(rr_server *srv);

#endif // GREETER_H
