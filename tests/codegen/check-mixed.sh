#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-mixed.sh PLUGIN SRCDIR -- the expected behaviour for a .proto
# mixing unary and streaming methods (protos/mixed.proto): protoc
# succeeds, stderr warns about each skipped method, the header says which
# were skipped, and only the unary methods have stubs.
set -euo pipefail
plugin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
protoc --plugin=protoc-gen-rawrpc="$plugin" -I"$src/protos" \
    --c_out="$tmp" --rawrpc_out="$tmp" "$src/protos/mixed.proto" 2>"$tmp/err"
for m in mixed.Desk.Watch mixed.Desk.Upload mixed.Feed.Chat; do
    grep -q "warning.*$m.*skipped" "$tmp/err" ||
        { echo "mixed: no warning for $m"; cat "$tmp/err"; exit 1; }
    grep -q "${m##*.}" "$tmp/mixed.rr.h" ||
        { echo "mixed: the header does not name skipped $m"; exit 1; }
done
for f in rr_mixed__desk__get__sync rr_mixed__desk__put__sync \
         rr_mixed__desk__register; do
    grep -q "$f" "$tmp/mixed.rr.h" || { echo "mixed: $f missing"; exit 1; }
done
if grep -qE 'rr_mixed__desk__(watch|upload)|rr_mixed__feed__chat' \
    "$tmp/mixed.rr.h" "$tmp/mixed.rr.c"; then
    echo "mixed: a streaming method got a stub"
    exit 1
fi
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
    -I"$src/../../runtime/include" -I"$tmp" "$tmp/mixed.rr.c"
echo "mixed: unary stubs generated, 3 streaming methods skipped and named"
