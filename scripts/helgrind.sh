#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# helgrind.sh -- runs the test programs with threads under Helgrind:
# test_rpc (replies from worker threads, a server's extra loops and their
# hand-offs) and test_services.  Races inside libev's ev_async protocol are
# suppressed (tests/helgrind.supp says why); any other is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build ${RAWRPC_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)" --target test_rpc test_services >/dev/null
for t in test_rpc test_services; do
    echo "helgrind: $t"
    valgrind --tool=helgrind -q --error-exitcode=1 \
        --suppressions=tests/helgrind.supp \
        "$(find build/tests -name "$t" -type f -executable | head -1)" \
        >/dev/null
done
echo "helgrind: no races"
