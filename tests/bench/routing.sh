#!/usr/bin/env bash
# make bench-routing: the cost of one routing decision through routing_decide
# (tests/bench/routing_bench.c), one thread, for each case:
#
#   floor          a script that only answers "stable"
#   allowlist      the default script, half the 10,000 IDs in force_canary
#   rollout-plain  the default script, a 50% flexibleRollout without constraints
#   rollout        the realistic toggle: 50% flexibleRollout, a segment with a
#                  NOT_IN of 20 cluster IDs and a SEMVER_GTE on ocpVersion
#   rollout-noeval the same decision with unleash.is_enabled answering false
#                  at once (the default script, its examples dropped): what the
#                  script and the call around the evaluation cost; rollout
#                  minus this is the evaluation's own cost
#   regex-benign   rollout plus a REGEX on userId a backtracker finds easy
#   regex-backtrack rollout plus a REGEX designed to backtrack on a cluster ID
#                  (inverted, so that it holds and the rollout still decides)
#   regex-hostile  rollout plus the inverted REGEX (a|aa)+$, on the longest
#                  IDs gcs takes from a User-Agent (255 bytes: 250 a's, '-',
#                  4 digits); a client chooses its own User-Agent
#
# The toggles are tests/bench/toggles.json, a client API answer as Unleash
# serves it with the Unleash-Client-Spec header (segments apart).
#
# Two figures per case: CPU nanoseconds per decision (the thread's CPU time,
# mean of two runs of CALLS decisions, the cases in order then in reverse), and
# instructions per decision from callgrind (a run of CG_CALLS decisions minus
# a run of none, divided by CG_CALLS): the figure that a loaded machine does
# not move (regex-hostile makes a hundredth of either count). Targets,
# printed and never enforced: the realistic rollout under 1 microsecond and
# at most 4,000 instructions; the backtracking REGEX, and the hostile IDs,
# within 2x the benign REGEX.
#
#   CALLS=100000 CG_CALLS=5000 tests/bench/routing.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

calls=${CALLS:-100000}
cg_calls=${CG_CALLS:-5000}
warmup=10000 # every ID once: the allowlist and Lua's strings warm
cg_warmup=1000
cases=(floor allowlist rollout-plain rollout rollout-noeval regex-benign regex-backtrack regex-hostile)
hostile_prefix=$(printf 'a%.0s' $(seq 250))-
bench=build/bench/routing

[ -x "$bench" ] || { echo "$bench missing: make build/bench/routing" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind missing: make bench-routing installs it" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/floor"
cat >"$work/floor/routing.lua" <<'LUA'
return { route = function() return "stable" end }
LUA
tests/bench/allowlist.sh "$work/allow"
mkdir -p "$work/noeval"
sed -e 's/^local is_enabled = unleash.is_enabled$/local is_enabled = function() return false end/' \
	-e 's/^return M$/M.examples = {}\nreturn M/' scripts/routing.lua >"$work/noeval/routing.lua"
grep -q '^local is_enabled = function() return false end$' "$work/noeval/routing.lua" || {
	echo "scripts/routing.lua no longer reads 'local is_enabled = unleash.is_enabled': update rollout-noeval" >&2
	exit 1
}

# scale NAME COUNT: a hostile decision costs as much as hundreds of others,
# so that case makes a hundredth of the decisions.
scale() { if [ "$1" = regex-hostile ]; then echo $(($2 / 100)); else echo "$2"; fi; }

# decide NAME WARMUP CALLS [WRAPPER...]: the bench binary on one case.
decide() {
	local name=$1 w n
	w=$(scale "$name" "$2")
	n=$(scale "$name" "$3")
	shift 3
	case $name in
	floor) "$@" "$bench" "$w" "$n" "$work/floor/routing.lua" ;;
	allowlist) "$@" "$bench" "$w" "$n" "$work/allow/routing.lua" ;;
	rollout-noeval)
		"$@" "$bench" "$w" "$n" "$work/noeval/routing.lua" tests/bench/toggles.json gcs-bench-rollout
		;;
	regex-hostile)
		BENCH_ID_PREFIX=$hostile_prefix "$@" "$bench" "$w" "$n" scripts/routing.lua \
			tests/bench/toggles.json "gcs-bench-$name"
		;;
	*) "$@" "$bench" "$w" "$n" scripts/routing.lua tests/bench/toggles.json "gcs-bench-$name" ;;
	esac
}

# A case that answers canary to another share than it should measures
# another path than the one it names.
check_share() {
	local name=$1 share=$2 ok
	if [ "$name" = floor ] || [ "$name" = rollout-noeval ]; then
		ok=$(awk -v s="$share" 'BEGIN { print (s == 0) }')
	else
		ok=$(awk -v s="$share" 'BEGIN { print (s >= 45 && s <= 55) }')
	fi
	[ "$ok" = 1 ] || { echo "$name answered canary to $share% of the IDs: not the path it names" >&2; exit 1; }
}

echo "== timing: $bench $warmup $calls SCRIPT [TOGGLES NAME], each case twice: in order, then in reverse"
# Other work on the machine moves the times (not the instructions): say how much there was.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
order=("${cases[@]}")
for ((i = ${#cases[@]} - 1; i >= 0; i--)); do order+=("${cases[i]}"); done
for name in "${order[@]}"; do
	round=1
	[ -e "$work/$name.1" ] && round=2
	decide "$name" "$warmup" "$calls" >"$work/$name.$round"
	read -r _ share <"$work/$name.$round"
	check_share "$name" "$share"
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== instructions: valgrind --tool=callgrind $bench $cg_warmup {$cg_calls,0} ..., per case"
for name in "${cases[@]}"; do
	for n in "$cg_calls" 0; do
		# callgrind runs tens of times slower: the routing script's CPU
		# budget must not trip on the allowlist's load
		decide "$name" "$cg_warmup" "$n" env GCS_ROUTING_BUDGET_MS=60000 valgrind -q \
			--tool=callgrind --callgrind-out-file="$work/$name.cg$n" >/dev/null
	done
done

field() { awk -v k="$2" '{ print $k }' "$work/$1"; }
ns() { awk -v a="$(field "$1.1" 1)" -v b="$(field "$1.2" 1)" 'BEGIN { printf "%.0f\n", (a + b) / 2 }'; }
share() { awk -v a="$(field "$1.1" 2)" -v b="$(field "$1.2" 2)" 'BEGIN { printf "%.1f\n", (a + b) / 2 }'; }
instr() {
	local with without
	with=$(awk '/^totals:/ { print $2 }' "$work/$1.cg$cg_calls")
	without=$(awk '/^totals:/ { print $2 }' "$work/$1.cg0")
	awk -v a="$with" -v b="$without" -v n="$(scale "$1" "$cg_calls")" 'BEGIN { printf "%.0f\n", (a - b) / n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }

declare -A label=(
	[floor]='floor: route returns "stable"'
	[allowlist]='allowlist: half the IDs in force_canary'
	[rollout-plain]='Unleash: flexibleRollout 50%'
	[rollout]='Unleash: 50% + NOT_IN 20 IDs + SEMVER_GTE'
	[rollout-noeval]='  the same, is_enabled answering false at once'
	[regex-benign]='  the same + benign REGEX'
	[regex-backtrack]='  the same + backtracking REGEX'
	[regex-hostile]='  the same + (a|aa)+$ on 255-byte IDs'
)
declare -A t c
echo
echo "== results ($(nproc) CPUs, one thread; ns: mean of two runs; instructions: callgrind)"
echo "load average before: $load_before, after the timing: $load_after"
printf '%-44s %12s %15s %8s\n' case "ns/decision" "instr/decision" canary
for name in "${cases[@]}"; do
	t[$name]=$(ns "$name")
	c[$name]=$(instr "$name")
	printf '%-44s %12s %15s %7s%%\n' "${label[$name]}" "${t[$name]}" "${c[$name]}" "$(share "$name")"
done
echo
echo "realistic rollout:            ${t[rollout]} ns   target < 1000 ns: $(verdict "${t[rollout]} < 1000")"
echo "realistic rollout:            ${c[rollout]} instructions   target <= 4000: $(verdict "${c[rollout]} <= 4000")"
echo "  the evaluation's own part:  $((c[rollout] - c[rollout-noeval])) instructions (the rest, ${c[rollout-noeval]}, is the script and the call around it)"
rt=$(ratio "${t[regex-backtrack]}" "${t[regex-benign]}")
rc=$(ratio "${c[regex-backtrack]}" "${c[regex-benign]}")
echo "backtracking / benign REGEX:  ${rt}x time, ${rc}x instructions   target <= 2x: $(verdict "$rt <= 2") (time), $(verdict "$rc <= 2") (instructions)"
rt=$(ratio "${t[regex-hostile]}" "${t[regex-benign]}")
rc=$(ratio "${c[regex-hostile]}" "${c[regex-benign]}")
echo "hostile IDs / benign REGEX:   ${rt}x time, ${rc}x instructions   target <= 2x: $(verdict "$rt <= 2") (time), $(verdict "$rc <= 2") (instructions)"
