#!/usr/bin/env bash
# make bench-memory: does gcs's resident memory stay flat over a long run?
# RSS after the first 10,000 routing decisions, then after 1,000,000
# decisions and 100 reloads of the routing script, every request going
# through scripts/routing.lua and the Unleash evaluation (a 50% rollout from
# a bootstrap file). A figure, not a pass/fail test: it prints the ratio of
# the two, the growth, the peak, and how many decisions went to canary.
#
#   DECISIONS=1000000 RELOADS=100 tests/bench/memory.sh   (GCS=... another build)
set -eu
cd "$(dirname "$0")/../.."

decisions=${DECISIONS:-1000000}
reloads=${RELOADS:-100}
first=10000
gcs=${GCS:-build/gcs}
[ -x "$gcs" ] || { echo "$gcs missing: make build/gcs" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: make deps" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

cp scripts/routing.lua "$work/routing.lua"
toggle=insights-operator-gathering-conditions-service
cat >"$work/bootstrap.json" <<JSON
{"version": 1, "features": [{"name": "$toggle", "enabled": true, "strategies": [
  {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "default", "groupId": "$toggle"}}]}]}
JSON
STABLE_VERSION=1.1.3 CANARY_VERSION=1.2.0 GCS_LISTEN=127.0.0.1:0 GCS_THREADS=2 \
	GCS_ROUTING_SCRIPT="$work/routing.lua" GCS_RELOAD_INTERVAL=0.05 \
	GCS_UNLEASH_BOOTSTRAP="$work/bootstrap.json" GCS_LOG_LEVEL=info \
	"$gcs" 2>"$work/gcs.log" &
pid=$!
for _ in $(seq 100); do
	grep -q '"msg":"listening"' "$work/gcs.log" && break
	sleep 0.1
done
addr=$(grep -o '"msg":"listening","address":"[^"]*"' "$work/gcs.log" | sed 's/.*"address":"//; s/"$//')
[ -n "$addr" ] || { echo "gcs did not start:" >&2; cat "$work/gcs.log" >&2; exit 1; }
url="http://$addr/api/gathering/gathering_rules"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
served() {
	curl -s "http://$addr/metrics" | awk '/^gcs_served_total/ { s += $2 } END { printf "%d\n", s }'
}
# drive N [R]: about N more requests (2 threads, 16 connections, rotate.lua's
# cluster IDs), each a routing decision, and R changes of the routing
# script spread evenly over them; wrk cannot stop at a count, so it is
# stopped once gcs counts them served.
# Sets samples to the RSS at each tenth of them.
drive() {
	local start=$(served) reloads=${2:-0} changed=0 tenths=0 now
	samples=
	local until=$((start + $1)) step=$(($1 / (${2:-0} + 1)))
	wrk -t2 -c16 -d3600s -s tests/bench/rotate.lua "$url" >/dev/null &
	local w=$!
	while now=$(served) && [ "$now" -lt "$until" ]; do
		if [ "$changed" -lt "$reloads" ] && [ "$now" -ge $((start + (changed + 1) * step)) ]; then
			changed=$((changed + 1))
			printf '\n-- memory benchmark reload %d\n' "$changed" >>"$work/routing.lua"
		fi
		if [ "$tenths" -lt 9 ] && [ "$now" -ge $((start + (tenths + 1) * $1 / 10)) ]; then
			tenths=$((tenths + 1))
			samples="$samples $(rss_kib)"
		fi
		sleep 0.05
	done
	kill "$w"
	wait "$w" 2>/dev/null || true
}
reloads_ok() {
	curl -s "http://$addr/metrics" | awk '/^gcs_routing_reloads_total\{result="ok"\}/ { print $2 }'
}
# decisions that went wrong (answered stable without the script's answer),
# and those the 50% rollout sent to canary: proof the evaluation ran
routing_errors() {
	curl -s "http://$addr/metrics" | awk '/^gcs_routing_errors_total/ { s += $2 } END { printf "%d\n", s }'
}
canary() {
	curl -s "http://$addr/metrics" |
		awk '/^gcs_served_total\{.*channel="canary"/ { s += $2 } END { printf "%d\n", s }'
}

start=$(date +%s)
drive "$first"
rss_first=$(rss_kib)
served_first=$(served)

# the rest of the decisions, with the reloads among them
t0=$(date +%s)
drive $((decisions - first)) "$reloads"
for _ in $(seq 50); do
	[ "$(reloads_ok)" -ge "$reloads" ] 2>/dev/null && break
	sleep 0.1
done
t1=$(date +%s)
rss_last=$(rss_kib)
rss_peak=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
done_reloads=$(reloads_ok)
total=$(served)
errors=$(routing_errors)
to_canary=$(canary)

echo "decisions: $total served (routing script and Unleash evaluation on each), in $((t1 - t0)) s after the first $served_first"
awk -v c="$to_canary" -v t="$total" -v e="$errors" \
	'BEGIN { printf "           %.1f%% to canary (a 50%% rollout), %d routing errors\n", c * 100 / t, e }'
echo "reloads:   ${done_reloads:-0} ok of $reloads script changes"
echo "RSS:       $rss_first KiB after $served_first decisions, $rss_last KiB after $total decisions and the reloads (peak $rss_peak KiB)"
echo "           KiB at each tenth of the run:${samples:-} $rss_last"
awk -v a="$rss_first" -v b="$rss_last" \
	'BEGIN { printf "ratio:     %.3f (%+.1f%%)\n", b / a, (b - a) * 100 / a }'
echo "took:      $(($(date +%s) - start)) s"
