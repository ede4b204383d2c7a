// SPDX-License-Identifier: MIT
//
// names.h -- every C name the generator makes, in one place.
//
// The rules are protobuf-c's (protoc-c/c_helpers.cc), so the generated
// stubs name protoc-c's symbols exactly: a type is each dotted piece
// CamelCased and joined by "__" (demo.say_request -> Demo__SayRequest);
// functions and descriptors are each piece camel-to-lower case joined by
// "__" (demo.EchoRequest -> demo__echo_request).  Ours all start "rr_",
// so they never collide with protoc-c's for the same service.
//
// Every function returns a malloc'd string (NULL when out of memory).

#ifndef RRGEN_NAMES_H
#define RRGEN_NAMES_H

#include <stdbool.h>

// ".demo.SayRequest" -> "Demo__SayRequest"
char *names_c(const char *full_name);
// ".demo.SayRequest" -> "demo__say_request"
char *names_lower(const char *full_name);
// ".demo.SayRequest" -> "DEMO__SAY_REQUEST"
char *names_upper(const char *full_name);
// "GetUser" -> "get_user": protobuf-c's CamelToLower of one piece
char *names_camel_to_lower(const char *name);
// "demo/echo.proto" -> "demo_2fecho_2eproto", an identifier
char *names_file_id(const char *filename);
// "demo/echo.proto" -> "demo/echo" (suffix stripped)
char *names_strip_proto(const char *filename);
// Whether s is a C11 keyword.
bool names_is_c_keyword(const char *s);
// Whether s is a C or C++ keyword, so it cannot name a struct field in a
// header C++ may include.
bool names_is_keyword(const char *s);

#endif // RRGEN_NAMES_H
