#!/usr/bin/env bash
# make bench: HTTP throughput and latency of build/gcs, side by side with
# references measured in the same run on the same machine, all on 127.0.0.1.
#
#  1. gcs on the v2 endpoint (STABLE 1.1.3, no canary) against nginx serving
#     the identical body bytes as a static file at the same path.
#     Targets: gcs >= 1.2x nginx req/s, gcs p99 <= nginx p99.
#  2. gcs with routing on (CANARY 1.2.0, the default routing script with half
#     of the 10,000 benchmark clusters in force_canary) against the same gcs
#     with CANARY_VERSION=none. Target: routing costs <= 10% of req/s.
#
# Each run: wrk, 2 threads, 64 connections, 10 s, --latency, User-Agents
# rotating over 10,000 cluster IDs (tests/bench/rotate.lua), after a 2 s
# warm-up with the same settings. Targets are printed, not enforced.
#
#   DURATION=10s tests/bench/http.sh
set -eu
cd "$(dirname "$0")/../.."
root=$PWD

duration=${DURATION:-10s}
wrk_opts=(-t2 -c64 "-d$duration" --latency -s "$root/tests/bench/rotate.lua")
path=/api/gathering/v2/4.17.0/gathering_rules
clusters=10000

for tool in wrk nginx curl python3; do
	command -v "$tool" >/dev/null || { echo "$tool missing: make deps" >&2; exit 1; }
done
[ -x build/gcs ] || { echo "build/gcs missing: make build/gcs" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody and read www/ from here
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL: until it answers 200, at most 30 s.
wait_http() {
	for _ in $(seq 300); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no answer from $1" >&2
	return 1
}

gcs_env() {
	echo GCS_LISTEN="127.0.0.1:$1" GCS_LOG_LEVEL=warn \
		GCS_CONDITIONS_URL="$root/rules/{version}" GCS_SCHEMA_DIR="$root/rules/schemas" \
		GCS_ROUTING_SCRIPT="$2" STABLE_VERSION=1.1.3 CANARY_VERSION="$3"
}

# start_gcs NAME PORT SCRIPT CANARY: gcs in the background, logs in $work.
start_gcs() {
	local name=$1 port=$2 script=$3 canary=$4
	local envs
	envs=$(gcs_env "$port" "$script" "$canary")
	echo "  server: env $envs build/gcs"
	# shellcheck disable=SC2086 # envs is word-split on purpose
	env $envs build/gcs 2>"$work/$name.log" &
	pids+=($!)
	wait_http "http://127.0.0.1:$port/readyz" || { cat "$work/$name.log" >&2; exit 1; }
}

stop_last() {
	local pid=${pids[-1]}
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	unset 'pids[-1]'
}

# bench NAME URL: a warm-up, then the measured run into $work/NAME.wrk.
bench() {
	local name=$1 url=$2
	echo "  load:   wrk ${wrk_opts[*]} $url"
	timeout 60 wrk -t2 -c64 -d2s -s "$root/tests/bench/rotate.lua" "$url" >/dev/null
	timeout 120 wrk "${wrk_opts[@]}" "$url" >"$work/$name.wrk"
	if grep -qE 'Non-2xx|Socket errors' "$work/$name.wrk"; then
		echo "  warning: $(grep -E 'Non-2xx|Socket errors' "$work/$name.wrk" | tr -s ' ')"
	fi
}

# Figures from wrk's output: req/s, and a latency percentile in microseconds.
rps() { awk '/^Requests\/sec:/ { print $2 }' "$work/$1.wrk"; }
pct() {
	awk -v p="$2%" '$1 == p {
		v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
		f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : (u == "m") ? 60000000 : 0
		printf "%.0f\n", v * f
	}' "$work/$1.wrk"
}
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }

echo "== gcs against nginx: v2 endpoint, STABLE 1.1.3, no canary"
gcs_port=$(free_port)
start_gcs gcs "$gcs_port" "$root/scripts/routing.lua" none
curl -fsS -o "$work/body" "http://127.0.0.1:$gcs_port$path"

nginx_port=$(free_port)
mkdir -p "$work/www$(dirname "$path")" "$work/tmp"
cp "$work/body" "$work/www$path"
chmod -R a+rX "$work/www"
sed -e "s|@PREFIX@|$work|g" -e "s|@PORT@|$nginx_port|g" tests/bench/nginx.conf >"$work/nginx.conf"
echo "  server: nginx -p $work -e $work/error.log -c $work/nginx.conf (from tests/bench/nginx.conf)"
nginx -p "$work" -e "$work/error.log" -c "$work/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:$nginx_port$path" || { cat "$work/error.log" >&2; exit 1; }
curl -fsS "http://127.0.0.1:$nginx_port$path" | cmp -s - "$work/body" ||
	{ echo "nginx does not serve the same bytes as gcs" >&2; exit 1; }

echo "== routing cost: CANARY 1.2.0 with half the clusters in force_canary, against CANARY_VERSION=none"
mkdir -p "$work/scripts"
cp scripts/*.lua "$work/scripts/"
# the same IDs rotate.lua sends; every even one is forced to canary
awk -v n="$clusters" 'BEGIN { for (i = 0; i < n; i += 2) printf "  [\"%08x-0000-4000-8000-%012x\"] = true,\n", i, i }' \
	>"$work/allow"
sed -i "/^local force_canary = {/r $work/allow" "$work/scripts/routing.lua"
[ "$(grep -c '= true,$' "$work/scripts/routing.lua")" -ge $((clusters / 2)) ] ||
	{ echo "could not fill force_canary in a copy of scripts/routing.lua" >&2; exit 1; }
echo "  script: scripts/routing.lua with $((clusters / 2)) of $clusters IDs added to force_canary"

route_port=$(free_port)
start_gcs routing "$route_port" "$work/scripts/routing.lua" 1.2.0
for i in 0 1; do
	id=$(printf '%08x-0000-4000-8000-%012x' "$i" "$i")
	channel=$(curl -fsS -D - -o /dev/null -A "insights-operator/4.17.0 cluster/$id" \
		"http://127.0.0.1:$route_port$path" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-gcs-channel" { print $2 }')
	want=$([ "$i" = 0 ] && echo canary || echo stable)
	[ "$channel" = "$want" ] ||
		{ echo "cluster $id got '$channel', expected $want: the allowlist is not in effect" >&2; exit 1; }
done

none_port=$(free_port)
start_gcs none "$none_port" "$work/scripts/routing.lua" none

# All four servers are up (idle ones cost nothing). Each is measured twice,
# in the order A B C D D C B A, so that drift in the machine's load during
# the run weighs on every server alike; the figures are the means.
echo "== measuring: gcs nginx routing none none routing nginx gcs"
declare -A urls=([gcs]=$gcs_port [nginx]=$nginx_port [routing]=$route_port [none]=$none_port)
round=0
for name in gcs nginx routing none none routing nginx gcs; do
	if [ -e "$work/$name.1.wrk" ]; then round=2; else round=1; fi
	bench "$name.$round" "http://127.0.0.1:${urls[$name]}$path"
done

mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f\n", (a + b) / 2 }'; }
mrps() { mean "$(rps "$1.1")" "$(rps "$1.2")"; }
mpct() { mean "$(pct "$1.1" "$2")" "$(pct "$1.2" "$2")"; }
g_rps=$(mrps gcs) n_rps=$(mrps nginx) r_rps=$(mrps routing) o_rps=$(mrps none)
g50=$(mpct gcs 50) g99=$(mpct gcs 99) n50=$(mpct nginx 50) n99=$(mpct nginx 99)
ratio=$(awk -v a="$g_rps" -v b="$n_rps" 'BEGIN { printf "%.2f", a / b }')
cost=$(awk -v r="$r_rps" -v o="$o_rps" 'BEGIN { printf "%.1f", (o - r) / o * 100 }')

echo
echo "== results (wrk -t2 -c64 -d$duration, $(nproc) CPUs; mean of two runs each)"
printf '%-28s %12s %10s %10s\n' "" "req/s" "p50 us" "p99 us"
printf '%-28s %12.0f %10s %10s\n' "gcs (v2, no canary)" "$g_rps" "$g50" "$g99"
printf '%-28s %12.0f %10s %10s\n' "nginx (same body, static)" "$n_rps" "$n50" "$n99"
printf '%-28s %12.0f\n' "gcs routing on (50% canary)" "$r_rps"
printf '%-28s %12.0f\n' "gcs CANARY_VERSION=none" "$o_rps"
echo
echo "gcs / nginx req/s:  ${ratio}x   target >= 1.2x: $(verdict "$ratio >= 1.2")"
echo "p99 gcs / nginx:    ${g99} / ${n99} us   target gcs <= nginx: $(verdict "$g99 <= $n99")"
echo "routing cost:       ${cost}%   target <= 10%: $(verdict "$cost <= 10")"
