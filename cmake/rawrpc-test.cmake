# SPDX-License-Identifier: MIT
#
# rawrpc_add_test(<name> SOURCES a.c ... [PROTOS x.proto ...]
#                 [IMPORT_DIRS dir ...] [LIBRARIES lib ...])
#
# Builds a test program from SOURCES and the stubs of PROTOS (through
# rawrpc_generate), or with LIBRARIES (a rawrpc_add_library target, say,
# that already holds them), links rawrpc and cmocka, and registers it with CTest
# under valgrind memcheck: any error or leak fails it.  (The test kit in
# rawrpc/testing.h checks the descriptor count itself.)  Set
# RAWRPC_TEST_VALGRIND to OFF to run without valgrind.
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/rawrpc-generate.cmake)

function(rawrpc_add_test name)
  cmake_parse_arguments(RT "" "" "SOURCES;PROTOS;IMPORT_DIRS;LIBRARIES"
    ${ARGN})
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(RAWRPC_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
  add_executable(${name} ${RT_SOURCES})
  if(RT_PROTOS)
    rawrpc_generate(${name} PROTOS ${RT_PROTOS} IMPORT_DIRS ${RT_IMPORT_DIRS})
  elseif(TARGET rawrpc)
    target_link_libraries(${name} PRIVATE rawrpc)
  else()
    target_link_libraries(${name} PRIVATE rawrpc::rawrpc)
  endif()
  target_link_libraries(${name} PRIVATE ${RT_LIBRARIES} PkgConfig::RAWRPC_CMOCKA)
  if(NOT DEFINED RAWRPC_TEST_VALGRIND)
    set(RAWRPC_TEST_VALGRIND ON)
  endif()
  find_program(RAWRPC_VALGRIND_EXE valgrind)
  set(wrapper)
  if(RAWRPC_TEST_VALGRIND AND RAWRPC_VALGRIND_EXE)
    set(wrapper ${RAWRPC_VALGRIND_EXE} -q --leak-check=full
        --error-exitcode=1 --errors-for-leak-kinds=definite,indirect,possible
        --show-leak-kinds=definite,indirect,possible)
  endif()
  add_test(NAME ${name} COMMAND ${wrapper} $<TARGET_FILE:${name}>)
  set_tests_properties(${name} PROPERTIES TIMEOUT 300)
endfunction()
