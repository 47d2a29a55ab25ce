#!/usr/bin/env bash
# tests/bench/allowlist.sh DIR: a copy of scripts/*.lua in DIR whose
# routing.lua lists half of the 10,000 benchmark clusters (every even one,
# the IDs tests/bench/rotate.lua sends) in force_canary: the allowlist path
# of make bench and make bench-routing.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:?usage: tests/bench/allowlist.sh DIR}
clusters=10000

mkdir -p "$dir"
cp scripts/*.lua "$dir/"
awk -v n="$clusters" 'BEGIN { for (i = 0; i < n; i += 2) printf "  [\"%08x-0000-4000-8000-%012x\"] = true,\n", i, i }' \
	>"$dir/ids"
sed -i "/^local force_canary = {/r $dir/ids" "$dir/routing.lua"
rm "$dir/ids"
[ "$(grep -c '= true,$' "$dir/routing.lua")" -ge $((clusters / 2)) ] ||
	{ echo "could not fill force_canary in a copy of scripts/routing.lua" >&2; exit 1; }
