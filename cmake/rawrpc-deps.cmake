# SPDX-License-Identifier: MIT
#
# Finds rawrpc's dependencies and gives each an imported target.  Used by
# the build and shipped with the installed package, so a consumer's
# find_package(rawrpc) resolves them the same way.
include_guard(GLOBAL)
find_package(PkgConfig REQUIRED)
pkg_check_modules(RR_PROTOBUFC REQUIRED IMPORTED_TARGET GLOBAL libprotobuf-c)

# Debian's libev ships no pkg-config or CMake file.
if(NOT TARGET rawrpc::libev)
  find_path(RAWRPC_EV_INCLUDE_DIR ev.h)
  find_library(RAWRPC_EV_LIBRARY ev)
  if(NOT RAWRPC_EV_INCLUDE_DIR OR NOT RAWRPC_EV_LIBRARY)
    message(FATAL_ERROR "libev not found: apt-get install libev-dev")
  endif()
  add_library(rawrpc::libev UNKNOWN IMPORTED GLOBAL)
  set_target_properties(rawrpc::libev PROPERTIES
    IMPORTED_LOCATION "${RAWRPC_EV_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${RAWRPC_EV_INCLUDE_DIR}")
endif()
