#!/usr/bin/env bash
# make bench-load: wall time and peak RSS of `build/gcs --check` on the two
# real versions in rules/ read through file://, against the targets
# (< 50 ms wall, < 16 MB RSS), with a reference measured in the same run:
# python3 parsing the same files with json.load (no validation at all).
#
#   RUNS=20 tests/bench/load.sh     (GCS=path/to/gcs to measure another build)
set -eu
cd "$(dirname "$0")/../.."

runs=${RUNS:-20}
target_ms=50
target_mb=16
gnu_time=/usr/bin/time
[ -x "$gnu_time" ] || { echo "GNU time missing: apt-get install time (make deps)" >&2; exit 1; }
gcs=${GCS:-build/gcs}
[ -x "$gcs" ] || { echo "$gcs missing: make build/gcs" >&2; exit 1; }

stable=1.1.3
canary=1.2.0
export STABLE_VERSION=$stable CANARY_VERSION=$canary
export GCS_CONDITIONS_URL="file://$PWD/rules/{version}" GCS_SCHEMA_DIR=rules/schemas
gcs_cmd=("$gcs" --check)

files=()
for v in $stable $canary; do
	while IFS= read -r f; do files+=("$f"); done < <(find "rules/$v" -name '*.json' | sort)
done
ref_cmd=(python3 -c 'import json, sys
for f in sys.argv[1:]:
    with open(f, "rb") as fh:
        json.load(fh)' "${files[@]}")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure NAME CMD...: RUNS runs after one warm-up; wall in ms from a
# nanosecond clock (GNU time's %e has only 10 ms steps), peak RSS in KiB from
# GNU time's %M. Writes "<ms> <kib>" lines to $work/NAME.
measure() {
	local name=$1
	shift
	"$@" >/dev/null 2>"$work/$name.err" || {
		echo "$name failed:" >&2
		cat "$work/$name.err" >&2
		exit 1
	}
	: >"$work/$name"
	for _ in $(seq "$runs"); do
		local t0 t1
		t0=$(date +%s%N)
		"$gnu_time" -f "%M" -o "$work/$name.rss" "$@" >/dev/null 2>&1
		t1=$(date +%s%N)
		echo "$(( (t1 - t0) / 1000 )) $(tail -n 1 "$work/$name.rss")" >>"$work/$name"
	done
}

# stats NAME: "<median ms> <max MB>" with three decimals / one decimal.
stats() {
	sort -n "$work/$1" | awk '
		{ us[NR] = $1; if ($2 > rss) rss = $2 }
		END {
			m = (NR % 2) ? us[(NR + 1) / 2] : (us[NR / 2] + us[NR / 2 + 1]) / 2
			printf "%.3f %.1f\n", m / 1000, rss / 1024
		}'
}

measure gcs "${gcs_cmd[@]}"
measure ref "${ref_cmd[@]}"
read -r gcs_ms gcs_mb < <(stats gcs)
read -r ref_ms ref_mb < <(stats ref)

verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "ok" : "OVER TARGET" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

echo "command:   STABLE_VERSION=$stable CANARY_VERSION=$canary GCS_CONDITIONS_URL='$GCS_CONDITIONS_URL' GCS_SCHEMA_DIR=$GCS_SCHEMA_DIR ${gcs_cmd[*]}"
echo "runs:      $runs (after one warm-up), $(nproc) CPUs"
echo "wall:      median $gcs_ms ms   (target < $target_ms ms: $(verdict "$gcs_ms" $target_ms))"
echo "peak RSS:  max $gcs_mb MB      (target < $target_mb MB: $(verdict "$gcs_mb" $target_mb))"
echo "reference: python3 json.load of the same ${#files[@]} files, no validation: median $ref_ms ms, max $ref_mb MB"
echo "ratio:     gcs/reference wall $(ratio "$gcs_ms" "$ref_ms"), RSS $(ratio "$gcs_mb" "$ref_mb")"
