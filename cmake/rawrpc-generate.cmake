# SPDX-License-Identifier: MIT
#
# rawrpc_add_library(<name> PROTOS a.proto ... [IMPORT_DIRS dir ...]
#                    [SHARED] [OUT_DIR dir] [LIBRARY lib])
#
# The usual way: one library target (static unless SHARED) holding the
# generated messages and stubs of PROTOS, with their headers on its
# public include path and rawrpc (and, when a .proto imports one, the
# well-known types) linked publicly.  The server, the client and the
# tests link it; the code is generated and compiled once.
#
# rawrpc_generate(<target> PROTOS a.proto ... [IMPORT_DIRS dir ...]
#                 [OUT_DIR dir] [LIBRARY lib])
#
# Runs protoc with protoc-c and protoc-gen-rawrpc on each .proto and adds
# the generated x.pb-c.c and x.rr.c to <target>, with OUT_DIR (default
# ${CMAKE_CURRENT_BINARY_DIR}/rawrpc_gen) on its include path and rawrpc
# linked (LIBRARY: rawrpc::rawrpc_static, say, instead of the shared one).
#
# A .proto's output path is its path relative to the first IMPORT_DIRS
# entry that contains it (or to its own directory), the name it has in
# import statements: with IMPORT_DIRS protos/ shared/, shared/b/b.proto
# becomes b/b.pb-c.h and protos/a.proto's `import "b/b.proto"` finds it.
# List every .proto of yours whose messages you use, imports included.
#
# The well-known types (google/protobuf/{any,api,duration,empty,
# field_mask,source_context,struct,timestamp,type,wrappers}.proto) are
# never generated here: rawrpc ships them compiled once, in rawrpc::wkt
# (rawrpc::wkt_static beside a static runtime), linked when a listed
# .proto imports one; listing one in PROTOS only asks for that link.
#
# A second rawrpc_generate of the same outputs (same OUT_DIR) does not run
# protoc again: the target waits for the first one's generation.  It still
# compiles the sources a second time; rawrpc_add_library avoids that.
#
# Works in rawrpc's own tree and from an installed rawrpc
# (find_package(rawrpc)).
include_guard(GLOBAL)

set(RAWRPC_WKT_NAMES any api duration empty field_mask source_context struct
    timestamp type wrappers)

# The folder holding google/protobuf/empty.proto and the other nine:
# RAWRPC_WKT_PROTO_DIR if set (an installed rawrpc sets it to the copy
# its rawrpc::wkt was generated from), else protoc's own include folder.
function(rawrpc_wkt_proto_dir out)
  if(NOT RAWRPC_WKT_PROTO_DIR)
    find_program(RAWRPC_PROTOC protoc REQUIRED)
    get_filename_component(bin ${RAWRPC_PROTOC} REALPATH)
    get_filename_component(bin ${bin} DIRECTORY)
    find_path(RAWRPC_WKT_PROTO_DIR google/protobuf/empty.proto
      HINTS ${bin}/../include ${bin}/include
      PATHS /usr/include /usr/local/include
      DOC "the folder with google/protobuf/*.proto (protoc's include folder)")
    if(NOT RAWRPC_WKT_PROTO_DIR)
      message(FATAL_ERROR "google/protobuf/empty.proto not found next to "
        "${RAWRPC_PROTOC}: apt-get install libprotobuf-dev, or set "
        "RAWRPC_WKT_PROTO_DIR")
    endif()
  endif()
  set(${out} ${RAWRPC_WKT_PROTO_DIR} PARENT_SCOPE)
endfunction()

function(rawrpc_generate target)
  cmake_parse_arguments(RG "" "OUT_DIR;LIBRARY" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(NOT RG_PROTOS)
    message(FATAL_ERROR "rawrpc_generate(${target}): no PROTOS")
  endif()
  if(NOT RG_OUT_DIR)
    set(RG_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/rawrpc_gen)
  endif()
  get_filename_component(RG_OUT_DIR ${RG_OUT_DIR} ABSOLUTE
    BASE_DIR ${CMAKE_CURRENT_BINARY_DIR})
  find_program(RAWRPC_PROTOC protoc REQUIRED)
  find_program(RAWRPC_PROTOC_GEN_C protoc-gen-c REQUIRED)
  if(TARGET protoc-gen-rawrpc)
    set(plugin $<TARGET_FILE:protoc-gen-rawrpc>)
    set(plugin_dep protoc-gen-rawrpc)
  else()
    set(plugin $<TARGET_FILE:rawrpc::protoc-gen-rawrpc>)
    set(plugin_dep)
  endif()
  set(lib rawrpc::rawrpc)
  set(wkt rawrpc::wkt)
  if(RG_LIBRARY)
    set(lib ${RG_LIBRARY})
    if(RG_LIBRARY MATCHES "static")
      set(wkt rawrpc::wkt_static)
    endif()
  endif()
  rawrpc_wkt_proto_dir(wkt_dir)
  string(JOIN "|" wkt_re ${RAWRPC_WKT_NAMES})
  set(wkt_re "\"google/protobuf/(${wkt_re})\\.proto\"")

  set(dirs)
  foreach(dir ${RG_IMPORT_DIRS})
    get_filename_component(dir ${dir} ABSOLUTE)
    list(APPEND dirs ${dir})
  endforeach()

  set(uses_wkt OFF)
  set(new_outs)
  set(new_keys)
  set(waits)
  foreach(proto ${RG_PROTOS})
    get_filename_component(proto ${proto} ABSOLUTE)
    get_filename_component(root ${proto} DIRECTORY)
    foreach(dir ${dirs} ${wkt_dir})
      string(FIND "${proto}" "${dir}/" at)
      if(at EQUAL 0)
        set(root ${dir})
        break()
      endif()
    endforeach()
    file(RELATIVE_PATH rel ${root} ${proto})
    if("\"${rel}\"" MATCHES "^${wkt_re}$")
      set(uses_wkt ON) # shipped compiled in rawrpc::wkt
      continue()
    endif()
    file(STRINGS ${proto} imports REGEX "^[ \t]*import[ \t]")
    if(imports MATCHES "${wkt_re}")
      set(uses_wkt ON)
    endif()
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(b ${RG_OUT_DIR}/${base})
    set(outs ${b}.pb-c.c ${b}.pb-c.h ${b}.rr.c ${b}.rr.h)
    set_source_files_properties(${outs} PROPERTIES GENERATED TRUE)
    target_sources(${target} PRIVATE ${b}.pb-c.c ${b}.rr.c)
    # protoc-c's output defines its functions without prototypes in scope.
    set_property(SOURCE ${b}.pb-c.c APPEND PROPERTY COMPILE_OPTIONS
      -Wno-missing-prototypes)

    string(MD5 key "${b}")
    get_property(owner GLOBAL PROPERTY RAWRPC_GENERATED_${key})
    if(owner)
      list(APPEND waits ${owner})
      continue()
    endif()
    # The root first, so the file's name is its path from there; the
    # well-known types' folder last, as protoc itself would add it.
    set(includes -I${root})
    foreach(dir ${dirs} ${wkt_dir})
      if(NOT dir STREQUAL root)
        list(APPEND includes -I${dir})
      endif()
    endforeach()
    string(MD5 dkey "${target}:${b}")
    set(depfile ${CMAKE_CURRENT_BINARY_DIR}/rawrpc_deps/${dkey}.d)
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${RG_OUT_DIR}
              ${CMAKE_CURRENT_BINARY_DIR}/rawrpc_deps
      COMMAND ${RAWRPC_PROTOC} ${includes}
              --plugin=protoc-gen-c=${RAWRPC_PROTOC_GEN_C}
              --plugin=protoc-gen-rawrpc=${plugin}
              --dependency_out=${depfile}
              --c_out=${RG_OUT_DIR} --rawrpc_out=${RG_OUT_DIR} ${proto}
      DEPENDS ${proto} ${plugin_dep}
      DEPFILE ${depfile}
      COMMENT "rawrpc_generate ${rel}"
      VERBATIM)
    list(APPEND new_outs ${outs})
    list(APPEND new_keys ${key})
  endforeach()

  # One target owns each generation, so parallel builds of the targets
  # sharing it never run protoc twice on the same files.
  if(new_outs)
    get_property(count GLOBAL PROPERTY RAWRPC_GEN_COUNT)
    math(EXPR n "0${count} + 1")
    set_property(GLOBAL PROPERTY RAWRPC_GEN_COUNT ${n})
    set(gen rawrpc_gen_${n}_${target})
    add_custom_target(${gen} DEPENDS ${new_outs})
    foreach(key ${new_keys})
      set_property(GLOBAL PROPERTY RAWRPC_GENERATED_${key} ${gen})
    endforeach()
    list(APPEND waits ${gen})
  endif()
  if(waits)
    list(REMOVE_DUPLICATES waits)
    add_dependencies(${target} ${waits})
  endif()

  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${RG_OUT_DIR}>)
  target_link_libraries(${target} PUBLIC ${lib})
  if(uses_wkt)
    target_link_libraries(${target} PUBLIC ${wkt})
  endif()
endfunction()

function(rawrpc_add_library name)
  cmake_parse_arguments(RL "SHARED" "OUT_DIR;LIBRARY" "PROTOS;IMPORT_DIRS"
    ${ARGN})
  if(RL_SHARED)
    add_library(${name} SHARED)
    # protoc-c's output has no export marks: keep its symbols visible.
    set_target_properties(${name} PROPERTIES C_VISIBILITY_PRESET default)
  else()
    add_library(${name} STATIC)
    set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  endif()
  set(args PROTOS ${RL_PROTOS})
  if(RL_IMPORT_DIRS)
    list(APPEND args IMPORT_DIRS ${RL_IMPORT_DIRS})
  endif()
  if(RL_OUT_DIR)
    list(APPEND args OUT_DIR ${RL_OUT_DIR})
  else()
    list(APPEND args OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/${name}_gen)
  endif()
  if(RL_LIBRARY)
    list(APPEND args LIBRARY ${RL_LIBRARY})
  endif()
  rawrpc_generate(${name} ${args})
endfunction()
