#!/usr/bin/env bash
# make bench: HTTP throughput and latency of build/gcs per core, side by side
# with nginx measured in the same run on the same machine, all on 127.0.0.1.
# Every server is pinned on one CPU (SERVER_CPU, default 0) with one worker
# (nginx worker_processes 1, gcs GCS_THREADS=1); wrk is pinned on another
# (WRK_CPU, default 1), so the figures are what one core of gcs serves.
#
#   nginx      the v2 body gcs serves, as a static file at the same path
#   off        gcs, STABLE 1.1.3, CANARY_VERSION=none: routing off
#   floor      gcs, CANARY 1.2.0, a script that only answers "stable": what
#              calling Lua for each request costs before any rule runs
#   allowlist  gcs, CANARY 1.2.0, the default script with half of the
#              10,000 benchmark clusters in force_canary
#   unleash    gcs, CANARY 1.2.0, the default script and the realistic toggle
#              gcs-bench-rollout of tests/bench/toggles.json (50%
#              flexibleRollout, NOT_IN 20 cluster IDs, SEMVER_GTE ocpVersion)
#              through GCS_UNLEASH_BOOTSTRAP, no Unleash server
#
# Targets, printed and never enforced: routing off >= 1.0x nginx's req/s;
# the Unleash path >= 0.93x routing off's req/s and <= 1.20x its instructions
# per request.
#
# Each run: wrk, 1 thread, CONNECTIONS (64) connections, DURATION (3s),
# --latency, User-Agents rotating over 10,000 cluster IDs
# (tests/bench/rotate.lua), after a 2 s warm-up with the same settings. The
# servers are measured in ROUNDS (5) rounds, each in the order
# A B C D E E D C B A, so that drift in the machine's load weighs on each alike
# within a round. A virtual machine's core can lose a third of its speed
# from one minute to the next: a ratio is therefore the median over the
# rounds of each round's own ratio (means of its two runs), and the other
# figures are medians over all runs. Beside req/s and latency: the
# server's CPU time per request and how idle its core was. Then each gcs
# runs under callgrind for CG_REQUESTS (3000) requests: user-space
# instructions per request, which no load moves (CG_REQUESTS=0 skips this).
#
#   DURATION=3s ROUNDS=5 CONNECTIONS=64 SERVER_CPU=0 WRK_CPU=1 CG_REQUESTS=3000 tests/bench/http.sh
set -eu
cd "$(dirname "$0")/../.."
root=$PWD

duration=${DURATION:-3s}
rounds=${ROUNDS:-5}
connections=${CONNECTIONS:-64}
server_cpu=${SERVER_CPU:-0}
wrk_cpu=${WRK_CPU:-1}
cg_requests=${CG_REQUESTS:-3000}
wrk_opts=(-t1 "-c$connections" "-d$duration" --latency -s "$root/tests/bench/rotate.lua")
path=/api/gathering/v2/4.17.0/gathering_rules
toggles=$root/tests/bench/toggles.json
toggle=gcs-bench-rollout

for tool in wrk nginx curl python3 taskset; do
	command -v "$tool" >/dev/null || { echo "$tool missing: make deps" >&2; exit 1; }
done
[ -x build/gcs ] || { echo "build/gcs missing: make build/gcs" >&2; exit 1; }
[ "$cg_requests" = 0 ] || command -v valgrind >/dev/null ||
	{ echo "valgrind missing: make bench installs it (or CG_REQUESTS=0)" >&2; exit 1; }
if [ "$server_cpu" = "$wrk_cpu" ] || ! taskset -c "$server_cpu,$wrk_cpu" true 2>/dev/null; then
	echo "need two CPUs this process may use: SERVER_CPU=$server_cpu WRK_CPU=$wrk_cpu" >&2
	exit 1
fi

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
# a closed pipe (| head) or a lost terminal must still stop the servers
trap 'exit 129' HUP
trap 'exit 141' PIPE

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

# The benchmark's cluster ID number i, as rotate.lua sends it.
cluster_id() { printf '%08x-0000-4000-8000-%012x' "$1" "$1"; }

# gcs_vars NAME: what sets each gcs configuration apart, one VAR=VALUE a line.
gcs_vars() {
	case $1 in
	off) printf '%s\n' "GCS_ROUTING_SCRIPT=$root/scripts/routing.lua" CANARY_VERSION=none ;;
	floor) printf '%s\n' "GCS_ROUTING_SCRIPT=$work/floor/routing.lua" CANARY_VERSION=1.2.0 ;;
	allowlist) printf '%s\n' "GCS_ROUTING_SCRIPT=$work/scripts/routing.lua" CANARY_VERSION=1.2.0 ;;
	unleash)
		printf '%s\n' "GCS_ROUTING_SCRIPT=$root/scripts/routing.lua" CANARY_VERSION=1.2.0 \
			"GCS_UNLEASH_BOOTSTRAP=$toggles" "GCS_UNLEASH_TOGGLE=$toggle"
		;;
	esac
}

# start_gcs NAME [WRAPPER...]: gcs in configuration NAME with one worker,
# pinned on the server CPU, in the background (under WRAPPER, e.g.
# valgrind), logs in $work; sets port[NAME] and its process, spid[NAME].
declare -A port spid
start_gcs() {
	local name=$1 vars
	shift
	port[$name]=$(free_port)
	mapfile -t vars < <(gcs_vars "$name")
	local envs=(GCS_LISTEN="127.0.0.1:${port[$name]}" GCS_LOG_LEVEL=warn GCS_THREADS=1
		GCS_CONDITIONS_URL="$root/rules/{version}" GCS_SCHEMA_DIR="$root/rules/schemas"
		STABLE_VERSION=1.1.3 "${vars[@]}")
	echo "  $name: taskset -c $server_cpu env ${envs[*]} $* build/gcs"
	taskset -c "$server_cpu" env "${envs[@]}" "$@" build/gcs 2>"$work/$name.log" &
	pids+=($!)
	spid[$name]=$!
	wait_http "http://127.0.0.1:${port[$name]}/readyz" || { cat "$work/$name.log" >&2; exit 1; }
}

# stop_gcs NAME: ends it (SIGTERM), waits, and forgets its PID, which the
# system may give to another process from then on.
stop_gcs() {
	local pid=${spid[$1]} keep=() p
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	for p in "${pids[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

# channels NAME ID...: the X-Gcs-Channel gcs NAME answers each cluster ID,
# one line each, from one curl.
channels() {
	local name=$1 id sep=
	shift
	for id in "$@"; do
		printf '%surl = "http://127.0.0.1:%s%s"\nuser-agent = "insights-operator/4.17.0 cluster/%s"\n' \
			"$sep" "${port[$name]}" "$path" "$id"
		printf 'output = /dev/null\nwrite-out = "%%header{x-gcs-channel}\\n"\n'
		sep=$'next\n'
	done | curl -fsS -K -
}

echo "== servers: pinned on CPU $server_cpu, one worker each"
start_gcs off
curl -fsS -o "$work/body" "http://127.0.0.1:${port[off]}$path"

port[nginx]=$(free_port)
mkdir -p "$work/www$(dirname "$path")" "$work/tmp"
cp "$work/body" "$work/www$path"
chmod -R a+rX "$work/www"
sed -e "s|@PREFIX@|$work|g" -e "s|@PORT@|${port[nginx]}|g" tests/bench/nginx.conf >"$work/nginx.conf"
echo "  nginx: taskset -c $server_cpu nginx -p $work -e $work/error.log -c $work/nginx.conf (from tests/bench/nginx.conf)"
taskset -c "$server_cpu" nginx -p "$work" -e "$work/error.log" -c "$work/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:${port[nginx]}$path" || { cat "$work/error.log" >&2; exit 1; }
# the master and its worker: the CPU time of both is nginx's (processes of
# others come and go meanwhile: a stat file may vanish while read)
spid[nginx]=$!
for stat in /proc/[0-9]*/stat; do
	read -r pid _ _ ppid _ 2>/dev/null <"$stat" || continue
	[ "$ppid" = "$!" ] && spid[nginx]+=" $pid"
done
[ "$(wc -w <<<"${spid[nginx]}")" = 2 ] || { echo "nginx: expected a master and one worker, found PIDs ${spid[nginx]}" >&2; exit 1; }
curl -fsS "http://127.0.0.1:${port[nginx]}$path" | cmp -s - "$work/body" ||
	{ echo "nginx does not serve the same bytes as gcs" >&2; exit 1; }

mkdir -p "$work/floor"
echo 'return { route = function() return "stable", "floor" end }' >"$work/floor/routing.lua"
start_gcs floor
tests/bench/allowlist.sh "$work/scripts"
start_gcs allowlist
[ "$(channels allowlist "$(cluster_id 0)" "$(cluster_id 1)" | tr '\n' ' ')" = "canary stable " ] ||
	{ echo "the allowlist is not in effect: cluster 0 must get canary, 1 stable" >&2; exit 1; }

start_gcs unleash
# The toggle decides: the clusters its NOT_IN lists all get stable, and
# about half of the others get canary.
mapfile -t excluded < <(python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
for s in doc["segments"]:
    for c in s["constraints"]:
        if c["operator"] == "NOT_IN":
            print("\n".join(c["values"]))' "$toggles")
got=$(channels unleash "${excluded[@]}" | sort | uniq -c | tr -s ' ')
if [ "${#excluded[@]}" -eq 0 ] || [ "$got" != " ${#excluded[@]} stable" ]; then
	echo "the toggle's NOT_IN is not in effect: its ${#excluded[@]} clusters got$got" >&2
	exit 1
fi
mapfile -t sample < <(for i in $(seq 1000 1199); do cluster_id "$i"; echo; done)
canary=$(channels unleash "${sample[@]}" | grep -c '^canary$' || true)
if [ "$canary" -lt 60 ] || [ "$canary" -gt 140 ]; then
	echo "the 50% rollout is not in effect: $canary of 200 clusters got canary" >&2
	exit 1
fi
echo "  unleash: $canary of 200 sample clusters canary, the ${#excluded[@]} NOT_IN clusters stable"

# cpu_ticks PID...: the CPU time (user + system) the processes used so far.
cpu_ticks() {
	local pid sum=0
	for pid in "$@"; do
		sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
	done
	echo "$sum"
}

# cpu_times N: "<idle> <total>" ticks of CPU N so far, from /proc/stat.
cpu_times() {
	awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print $5 + $6, t }' /proc/stat
}

# bench NAME URL: a warm-up, then the measured run into $work/NAME.wrk, the
# server's CPU ticks during it into $work/NAME.cpu and the share of the
# time its core was idle into $work/NAME.idle.
bench() {
	local name=$1 url=$2 before idle0 total0 idle1 total1
	echo "  $name: taskset -c $wrk_cpu wrk ${wrk_opts[*]} $url"
	timeout 60 taskset -c "$wrk_cpu" wrk -t1 "-c$connections" -d2s -s "$root/tests/bench/rotate.lua" "$url" >/dev/null
	# shellcheck disable=SC2086 # spid holds several PIDs for nginx
	before=$(cpu_ticks ${spid[${name%.*}]})
	read -r idle0 total0 < <(cpu_times "$server_cpu")
	timeout 300 taskset -c "$wrk_cpu" wrk "${wrk_opts[@]}" "$url" >"$work/$name.wrk"
	read -r idle1 total1 < <(cpu_times "$server_cpu")
	# shellcheck disable=SC2086
	echo $(($(cpu_ticks ${spid[${name%.*}]}) - before)) >"$work/$name.cpu"
	awk -v i=$((idle1 - idle0)) -v t=$((total1 - total0)) 'BEGIN { printf "%.1f\n", t ? 100 * i / t : 0 }' \
		>"$work/$name.idle"
	if grep -qE 'Non-2xx|Socket errors' "$work/$name.wrk"; then
		echo "  warning: $(grep -E 'Non-2xx|Socket errors' "$work/$name.wrk" | tr -s ' ')"
	fi
}

# Idle servers cost nothing: all stay up while each is measured in turn.
# Run k of a server is $name.k: runs 2r-1 and 2r are those of round r.
order=(nginx off floor allowlist unleash unleash allowlist floor off nginx)
echo "== measuring, wrk pinned on CPU $wrk_cpu: $rounds rounds of ${order[*]}"
# Other work on the machine moves every figure: say how much there was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A runs
for ((round = 1; round <= rounds; round++)); do
	for name in "${order[@]}"; do
		runs[$name]=$((${runs[$name]:-0} + 1))
		bench "$name.${runs[$name]}" "http://127.0.0.1:${port[$name]}$path"
	done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The figure no load moves: user-space instructions per request, each gcs
# under callgrind answering CG_REQUESTS requests (rotating IDs, one
# keep-alive connection) after one that builds the worker's Lua state,
# minus the same run with that one request only.
if [ "$cg_requests" -gt 0 ]; then
	echo "== instructions: each gcs under valgrind --tool=callgrind, 1 and $((cg_requests + 1)) requests"
	mapfile -t cg_ids < <(for ((i = 0; i <= cg_requests; i++)); do cluster_id $((i % 10000)); echo; done)
	for name in off floor allowlist unleash; do
		stop_gcs "$name"
		for n in 1 $((cg_requests + 1)); do
			# callgrind runs gcs tens of times slower: the routing script's CPU
			# budget (the allowlist's 5,000 entries take a while to load) must
			# not trip on that
			start_gcs "$name" env GCS_ROUTING_BUDGET_MS=60000 \
				valgrind -q --tool=callgrind --callgrind-out-file="$work/$name.cg$n" >/dev/null
			channels "$name" "${cg_ids[@]:0:n}" >/dev/null
			stop_gcs "$name"
		done
	done
fi

# Figures from wrk's output: req/s, and a latency percentile in microseconds.
rps() { awk '/^Requests\/sec:/ { print $2 }' "$work/$1.wrk"; }
pct() {
	awk -v p="$2%" '$1 == p {
		v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
		f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : (u == "m") ? 60000000 : 0
		printf "%.0f\n", v * f
	}' "$work/$1.wrk"
}
# Microseconds of server CPU per request: unlike req/s, what other work
# on the machine takes from the server's core does not lower it.
cpu_us() {
	awk -v t="$(cat "$work/$1.cpu")" -v hz="$(getconf CLK_TCK)" \
		'/ requests in / { printf "%.2f\n", t / hz * 1e6 / $1 }' "$work/$1.wrk"
}
cg_total() { awk '/^totals:/ { print $2 }' "$work/$1"; }
# median FORMAT VALUE...: the median of the values, printed with FORMAT.
median() {
	local fmt=$1
	shift
	printf '%s\n' "$@" | sort -g | awk -v f="$fmt" '{ v[NR] = $1 }
		END { printf f "\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# per_run FIGURE NAME: FIGURE (a function of a run's name) for every run of NAME.
per_run() {
	local k
	for ((k = 1; k <= 2 * rounds; k++)); do "$1" "$2.$k"; done
}
idle_of() { cat "$work/$1.idle"; }
p50() { pct "$1" 50; }
p99() { pct "$1" 99; }
# round_ratios FIGURE A B: for each round, A's figure over B's, each the
# mean of the round's two runs; round_ratio: their median.
round_ratios() {
	local fig=$1 a=$2 b=$3 k
	for ((k = 1; k <= rounds; k++)); do
		awk -v a1="$("$fig" "$a.$((2 * k - 1))")" -v a2="$("$fig" "$a.$((2 * k))")" \
			-v b1="$("$fig" "$b.$((2 * k - 1))")" -v b2="$("$fig" "$b.$((2 * k))")" \
			'BEGIN { printf "%.2f\n", (a1 + a2) / (b1 + b2) }'
	done
}
round_ratio() {
	local ratios
	mapfile -t ratios < <(round_ratios "$@")
	median %.2f "${ratios[@]}"
}
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }

declare -A label=(
	[nginx]="nginx (same body, static)"
	[off]="gcs routing off"
	[floor]="gcs Lua floor (\"stable\")"
	[allowlist]="gcs allowlist (50% listed)"
	[unleash]="gcs Unleash rollout"
)
declare -A r c
echo
echo "== results (wrk -t1 -c$connections -d$duration; servers on CPU $server_cpu, wrk on CPU $wrk_cpu; medians of $rounds rounds)"
echo "load average before: $load_before, after: $load_after"
printf '%-28s %10s %9s %9s %11s %9s\n' "" "req/s" "p50 us" "p99 us" "CPU us/req" "CPU$server_cpu idle"
for name in nginx off floor allowlist unleash; do
	mapfile -t all < <(per_run rps "$name")
	r[$name]=$(median %.0f "${all[@]}")
	mapfile -t all < <(per_run cpu_us "$name")
	c[$name]=$(median %.2f "${all[@]}")
	mapfile -t all < <(per_run p50 "$name")
	p50s=$(median %.0f "${all[@]}")
	mapfile -t all < <(per_run p99 "$name")
	p99s=$(median %.0f "${all[@]}")
	mapfile -t all < <(per_run idle_of "$name")
	printf '%-28s %10s %9s %9s %11s %8s%%\n' "${label[$name]}" "${r[$name]}" "$p50s" "$p99s" \
		"${c[$name]}" "$(median %.1f "${all[@]}")"
done
off_nginx=$(round_ratio rps off nginx)
unleash_off=$(round_ratio rps unleash off)
echo
echo "median of the rounds' ratios:  req/s   target          by CPU per request"
echo "routing off / nginx:           ${off_nginx}x  >= 1.0x: $(verdict "$off_nginx >= 1.0")   $(round_ratio cpu_us nginx off)x"
echo "Unleash rollout / routing off: ${unleash_off}x  >= 0.93x: $(verdict "$unleash_off >= 0.93")  $(round_ratio cpu_us off unleash)x"
echo "allowlist / routing off:       $(round_ratio rps allowlist off)x                   $(round_ratio cpu_us off allowlist)x"
echo "Lua floor / routing off:       $(round_ratio rps floor off)x                   $(round_ratio cpu_us off floor)x"
echo "(the floor calls a script that only answers \"stable\": no path that runs a rule can be faster)"
echo "each round's req/s ratio, in order:"
for pair in "off nginx" "unleash off" "allowlist off" "floor off"; do
	read -r a b <<<"$pair"
	printf '  %-28s %s\n' "$a / $b" "$(round_ratios rps "$a" "$b" | tr '\n' ' ')"
done
echo "(CPU us/req: the server's own CPU time per request, which other load does not raise much;"
echo " an idle server CPU during a run means wrk, not the server, set the req/s.)"
if [ "$cg_requests" -gt 0 ]; then
	declare -A ir
	echo
	echo "user-space instructions per request (callgrind; the kernel's part is not in them):"
	for name in off floor allowlist unleash; do
		ir[$name]=$((($(cg_total "$name.cg$((cg_requests + 1))") - $(cg_total "$name.cg1")) / cg_requests))
		printf '  %-28s %8s\n' "${label[$name]}" "${ir[$name]}"
	done
	unleash_ir=$(ratio "${ir[unleash]}" "${ir[off]}")
	echo "  Unleash rollout / routing off: ${unleash_ir}x the instructions, target <= 1.20x:" \
		"$(verdict "$unleash_ir <= 1.20") (the decision: $((ir[unleash] - ir[off])) instructions)"
fi
