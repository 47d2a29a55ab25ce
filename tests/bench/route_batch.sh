#!/usr/bin/env bash
# make bench-route-batch: wall time of `gcs --route -` over 100,000 cluster
# IDs (half of them with an OCP version), with the realistic Unleash toggle
# of tests/bench/toggles.json from a bootstrap file, against the target
# (< 2 s). Reference, measured in the same run: the same IDs with no Unleash
# state, so the script answers without evaluating a toggle.
#
#   IDS=100000 RUNS=3 tests/bench/route_batch.sh
set -eu
cd "$(dirname "$0")/../.."
# (the setup below has memory.sh's shape: each benchmark is a script of its
# own that runs alone, with its own defaults)

ids=${IDS:-100000}
runs=${RUNS:-3}
target_s=2
gcs=${GCS:-build/gcs}
[ -x "$gcs" ] || { echo "$gcs missing: make build/gcs" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$ids" >"$work/ids" <<'PY'
import random, sys, uuid
rng = random.Random(42)
for i in range(int(sys.argv[1])):
    cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    print(cid if i % 2 else "%s 4.%d.%d" % (cid, rng.randint(10, 18), rng.randint(0, 30)))
PY

export STABLE_VERSION=1.1.3 CANARY_VERSION=1.2.0 GCS_CONDITIONS_URL="$PWD/rules/{version}" \
	GCS_SCHEMA_DIR=rules/schemas GCS_LOG_LEVEL=warn

# run NAME [VAR=VALUE...]: the median wall seconds of RUNS runs; checks the
# answer count and writes the canary count to $work/NAME.canary.
run() {
	local name=$1 t0 t1
	shift
	for _ in $(seq "$runs"); do
		t0=$(date +%s%N)
		env "$@" "$gcs" --route - <"$work/ids" >"$work/$name.out"
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000000))
	done | sort -n | sed -n "$(((runs + 1) / 2))p" >"$work/$name.ms"
	[ "$(wc -l <"$work/$name.out")" -eq "$ids" ] || { echo "$name: not one line per ID" >&2; exit 1; }
	awk -F'\t' '$2 == "canary"' "$work/$name.out" | wc -l >"$work/$name.canary"
}

run reference
run unleash GCS_UNLEASH_BOOTSTRAP=tests/bench/toggles.json GCS_UNLEASH_TOGGLE=gcs-bench-rollout
[ "$(cat "$work/unleash.canary")" -gt 0 ] || { echo "the toggle put no cluster in the canary" >&2; exit 1; }

ref=$(cat "$work/reference.ms")
got=$(cat "$work/unleash.ms")
echo "gcs --route - over $ids IDs (median of $runs runs, wall time):"
printf '  %-34s %6d ms\n' "no Unleash state (reference)" "$ref"
printf '  %-34s %6d ms  (%s in the canary)\n' "realistic Unleash toggle" "$got" "$(cat "$work/unleash.canary")"
awk -v g="$got" -v r="$ref" 'BEGIN { printf "  ratio to the reference: %.2fx\n", g / r }'
if [ "$got" -lt $((target_s * 1000)) ]; then
	echo "  target < ${target_s} s: met"
else
	echo "  target < ${target_s} s: MISSED"
fi
