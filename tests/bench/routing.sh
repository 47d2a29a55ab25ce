#!/usr/bin/env bash
# make bench-routing: nanoseconds per routing decision (see routing_bench.c).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/floor" "$work/allow"
cat >"$work/floor/routing.lua" <<'LUA'
return { route = function() return "stable" end }
LUA
cp scripts/*.lua "$work/allow/"
awk 'BEGIN { for (i = 0; i < 10000; i += 2) printf "  [\"%08x-0000-4000-8000-%012x\"] = true,\n", i, i }' \
	>"$work/ids"
sed -i "/^local force_canary = {/r $work/ids" "$work/allow/routing.lua"

echo "command: build/bench/routing FLOOR ALLOWLIST scripts/routing.lua ($(nproc) CPUs, one thread)"
build/bench/routing "$work/floor/routing.lua" "$work/allow/routing.lua" scripts/routing.lua
