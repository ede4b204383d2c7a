# SPDX-License-Identifier: MIT
#
# echo.capnp -- the Cap'n Proto comparator's echo service
# (bench/peers/capnp_server.cc, capnp_bench.cc).  The payload is capnp's
# own Data, not protobuf bytes wrapped in Data: Cap'n Proto has its own
# serialization, and a user who picks it uses that.  The field mirrors
# EchoRequest / EchoReply in services/echo/echo.proto: one bytes field.
@0xb647f9ae701e8e32;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("rrb");

interface Echo {
  # echo replies with the request's payload, untouched.
  echo @0 (payload :Data) -> (payload :Data);
}
