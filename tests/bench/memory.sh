#!/usr/bin/env bash
# make bench-memory: does gcs's resident memory stay flat over a long run?
# RSS after the first 10,000 routing decisions, then after 1,000,000
# decisions and 100 reloads of the routing script, every request going
# through scripts/routing.lua and the Unleash evaluation (a 50% rollout from
# a bootstrap file). A figure, not a pass/fail test: it prints the growth.
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
# drive N: about N more requests (2 threads, 16 connections, rotate.lua's
# cluster IDs), each a routing decision; wrk cannot stop at a count, so it
# is stopped once gcs counts them served.
drive() {
	local until=$(($(served) + $1))
	wrk -t2 -c16 -d3600s -s tests/bench/rotate.lua "$url" >/dev/null &
	local w=$!
	while [ "$(served)" -lt "$until" ]; do
		sleep 0.05
	done
	kill "$w"
	wait "$w" 2>/dev/null || true
}
reloads_ok() {
	curl -s "http://$addr/metrics" | awk '/^gcs_routing_reloads_total\{result="ok"\}/ { print $2 }'
}

drive "$first"
rss_first=$(rss_kib)

# 100 reloads while the rest of the decisions run
(
	for i in $(seq "$reloads"); do
		printf '\n-- memory benchmark reload %d\n' "$i" >>"$work/routing.lua"
		sleep 0.2
	done
) &
writer=$!
t0=$(date +%s)
drive $((decisions - first))
wait "$writer"
for _ in $(seq 50); do
	[ "$(reloads_ok)" -ge "$reloads" ] 2>/dev/null && break
	sleep 0.1
done
t1=$(date +%s)
rss_last=$(rss_kib)
done_reloads=$(reloads_ok)
total=$(served)

echo "decisions: $total served (routing script and Unleash evaluation on each), in $((t1 - t0)) s after the first $first"
echo "reloads:   ${done_reloads:-0} ok of $reloads script changes"
echo "RSS:       $rss_first KiB after $first decisions, $rss_last KiB after $decisions decisions and the reloads"
awk -v a="$rss_first" -v b="$rss_last" 'BEGIN { printf "growth:    %+.1f%%\n", (b - a) * 100 / a }'
