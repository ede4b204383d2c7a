#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh [BUILD_DIR] [UNITTEST ARGS...] -- runs interop tests by hand with
# the programs and generated messages of BUILD_DIR (default: build), e.g.
#   tests/interop/run.sh build test_calls
#   tests/interop/run.sh build test_calls.MethodNames.test_name_not_utf8
# Set RR_INTEROP_WRAPPER="valgrind -q --error-exitcode=1" to run the C
# programs under valgrind, as the valgrind build's ctest does.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:-build}" && pwd)"
shift || true
gen="$build/tests/interop"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
cd "$here"
PYTHONPATH="$gen/py" \
    RR_INTEROP_SERVER="$gen/rawrpc-interop-server" \
    RR_INTEROP_CLIENT="$gen/rawrpc-interop-client" \
    RR_INTEROP_WRAPPER="${RR_INTEROP_WRAPPER:-}" \
    exec "$py" -B -m unittest "${@:-discover}" -v
