#!/usr/bin/env bash
# The README's quickstart (`npm run quickstart`, after `npm ci && npm run build`):
# build examples/hello.c with the seed's SYSCALL_INST, rewrite it with the built-in recipe
# glibc-rfc and the tracing entry, then run the original and the rewritten program.
# Outputs go to examples/build/ (or $LIBOS_QUICKSTART_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${LIBOS_QUICKSTART_DIR:-examples/build}"
mkdir -p "$out"
libos_patch() { node packages/cli/bin/libos-patch.js "$@"; }

step() { printf '\n== %s\n' "$*"; }

step "build: gcc -O2 -no-pie -I fixtures/include -o $out/hello examples/hello.c"
gcc -O2 -no-pie -I fixtures/include -o "$out/hello" examples/hello.c

step "the original program"
"$out/hello"

step "its syscall sites: libos-patch sites $out/hello --recipe glibc-rfc"
libos_patch sites "$out/hello" --recipe glibc-rfc

step "rewrite: libos-patch apply $out/hello --recipe glibc-rfc --entry trace -o $out/hello.traced"
libos_patch apply "$out/hello" --recipe glibc-rfc --entry trace -o "$out/hello.traced"

step "the rewritten program: each [libos] line is a system call the trace entry intercepted (stderr)"
"$out/hello.traced" > "$out/hello.traced.out"
printf -- '-- and what the program printed (stdout):\n'
cat "$out/hello.traced.out"

step "check: libos-patch verify $out/hello.traced"
libos_patch verify "$out/hello.traced"
