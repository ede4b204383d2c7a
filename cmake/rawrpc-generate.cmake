# SPDX-License-Identifier: MIT
#
# rawrpc_generate(<target> PROTOS a.proto ... [IMPORT_DIRS dir ...]
#                 [OUT_DIR dir] [LIBRARY lib])
#
# Runs protoc with protoc-c and protoc-gen-rawrpc on each .proto and adds
# the generated x.pb-c.c and x.rr.c to <target>, with OUT_DIR (default
# ${CMAKE_CURRENT_BINARY_DIR}/rawrpc_gen) on its include path and rawrpc
# linked (LIBRARY: rawrpc::rawrpc_static, say, instead of the shared one).  A .proto's output path is its path relative to the first
# IMPORT_DIRS entry that contains it (or to its own directory).  List
# every .proto whose messages you use, imports included; for
# google/protobuf/empty.proto pass /usr/include/google/protobuf/empty.proto
# with IMPORT_DIRS /usr/include.  Works in rawrpc's own tree and from an
# installed rawrpc (find_package(rawrpc)).
include_guard(GLOBAL)

function(rawrpc_generate target)
  cmake_parse_arguments(RG "" "OUT_DIR;LIBRARY" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(NOT RG_PROTOS)
    message(FATAL_ERROR "rawrpc_generate(${target}): no PROTOS")
  endif()
  if(NOT RG_OUT_DIR)
    set(RG_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/rawrpc_gen)
  endif()
  find_program(RAWRPC_PROTOC protoc REQUIRED)
  find_program(RAWRPC_PROTOC_GEN_C protoc-gen-c REQUIRED)
  if(TARGET protoc-gen-rawrpc)
    set(plugin $<TARGET_FILE:protoc-gen-rawrpc>)
    set(lib rawrpc)
  else()
    set(plugin $<TARGET_FILE:rawrpc::protoc-gen-rawrpc>)
    set(lib rawrpc::rawrpc)
  endif()

  set(includes)
  foreach(dir ${RG_IMPORT_DIRS})
    get_filename_component(dir ${dir} ABSOLUTE)
    list(APPEND includes -I${dir})
  endforeach()

  foreach(proto ${RG_PROTOS})
    get_filename_component(proto ${proto} ABSOLUTE)
    get_filename_component(root ${proto} DIRECTORY)
    foreach(dir ${RG_IMPORT_DIRS})
      get_filename_component(dir ${dir} ABSOLUTE)
      string(FIND "${proto}" "${dir}/" at)
      if(at EQUAL 0)
        set(root ${dir})
        break()
      endif()
    endforeach()
    file(RELATIVE_PATH rel ${root} ${proto})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(outs ${RG_OUT_DIR}/${base}.pb-c.c ${RG_OUT_DIR}/${base}.pb-c.h
             ${RG_OUT_DIR}/${base}.rr.c ${RG_OUT_DIR}/${base}.rr.h)
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${RG_OUT_DIR}
      COMMAND ${RAWRPC_PROTOC} -I${root} ${includes}
              --plugin=protoc-gen-c=${RAWRPC_PROTOC_GEN_C}
              --plugin=protoc-gen-rawrpc=${plugin}
              --c_out=${RG_OUT_DIR} --rawrpc_out=${RG_OUT_DIR} ${proto}
      DEPENDS ${proto} ${plugin}
      COMMENT "rawrpc_generate ${rel}"
      VERBATIM)
    target_sources(${target} PRIVATE ${RG_OUT_DIR}/${base}.pb-c.c
                                     ${RG_OUT_DIR}/${base}.rr.c)
  endforeach()
  target_include_directories(${target} PUBLIC ${RG_OUT_DIR})
  if(RG_LIBRARY)
    set(lib ${RG_LIBRARY})
  endif()
  target_link_libraries(${target} PUBLIC ${lib})
endfunction()
