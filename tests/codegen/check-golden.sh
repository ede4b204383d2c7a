#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-golden.sh PLUGIN SRCDIR [--update] -- runs protoc-gen-rawrpc on
# the test protos and compares its output with golden/ byte for byte;
# checks that bad inputs are refused with a clear message, and that an
# unparsable request fails the plugin.  --update rewrites golden/.
set -euo pipefail
plugin=$1
src=$2
update=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gen=(protoc --plugin=protoc-gen-rawrpc="$plugin" -I"$src/protos" -I/usr/include)

"${gen[@]}" --rawrpc_out="$tmp" "$src/protos/greet.proto" \
    "$src/protos/plain.proto" "$src/protos/mixed.proto" 2>"$tmp/warn"
for want in "mixed.Chat.Talk is streaming" "mixed.Chat.Listen is streaming"; do
    grep -qF "$want" "$tmp/warn" || {
        echo "golden: no warning \"$want\": $(cat "$tmp/warn")"
        exit 1
    }
done
for f in greet.rr.h greet.rr.c plain.rr.h plain.rr.c mixed.rr.h mixed.rr.c; do
    if [ "$update" = --update ]; then
        cp "$tmp/$f" "$src/golden/$f"
    elif ! diff -u "$src/golden/$f" "$tmp/$f"; then
        echo "golden: $f differs from tests/codegen/golden (--update if meant)"
        exit 1
    fi
done

for bad in "keyword:method bad.Flow.Return: protoc-c would name a struct member"; do
    name=${bad%%:*}
    want=${bad#*:}
    if out=$("${gen[@]}" --rawrpc_out="$tmp" "$src/protos/bad/$name.proto" 2>&1); then
        echo "golden: bad/$name.proto was accepted"
        exit 1
    fi
    grep -qF "$want" <<<"$out" || { echo "golden: bad/$name.proto: $out"; exit 1; }
done

# The ABI guard: against a runtime of another stub ABI, compiling fails
# with the guard's message.
mkdir -p "$tmp/fake/rawrpc"
printf '#define RAWRPC_STUB_ABI 2\n' >"$tmp/fake/rawrpc/stub.h"
protoc -I"$src/protos" --c_out="$tmp" "$src/protos/greet.proto"
if cc -std=c11 -fsyntax-only -I"$tmp/fake" -I"$tmp" "$tmp/greet.rr.h" \
    2>"$tmp/abi.err"; then
    echo "golden: a stub ABI mismatch compiled"
    exit 1
fi
grep -q "generated for another rawrpc; regenerate it" "$tmp/abi.err"

if printf 'garbage' | "$plugin" >/dev/null 2>"$tmp/err"; then
    echo "golden: an unparsable request was accepted"
    exit 1
fi
grep -q "not a CodeGeneratorRequest" "$tmp/err"
echo "golden: 6 files match; streaming methods skipped with a warning; a bad proto, an ABI mismatch and a bad request refused"
