#!/usr/bin/env bash
# Proves the Dockerfile where no container engine runs: builds each stage's
# filesystem from a debootstrap of the stage's Debian base, runs the stage's
# instructions as read from the Dockerfile (RUN in a chroot, COPY from the
# build context as .dockerignore filters it), then runs the image's
# entrypoint as the image's user on a read-only root with the pod's volumes
# (deploy/): --check against a download server on 127.0.0.1, --check of a
# version that does not exist (must fail), then serving, a routing ConfigMap
# edit picked up without restart, and a clean stop on SIGTERM.
#
#   tests/support/docker-check.sh      (make docker-check; root; the first run
#                                       bootstraps Debian and takes minutes)
#
# The Debian base is cached in tests/.cache/docker-check, and so are the
# packages apt downloads; the stages are rebuilt from scratch on every run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=$ROOT/tests/.cache/docker-check
SUITE=bookworm
STARTED=$(date +%s)

say() { echo "docker-check: $*"; }
die() {
	echo "docker-check: FAILED: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || {
	say "installing debootstrap"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

# --- mounts, always undone ---------------------------------------------------

MOUNTS=()
PIDS=()
cleanup() {
	local i pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null ||
			echo "docker-check: could not unmount ${MOUNTS[i]}" >&2
	done
	MOUNTS=()
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_at() { # mount_at TARGET ARGS...: mount and remember to undo it
	local target=$1
	shift
	mount "$@" "$target"
	MOUNTS+=("$target")
}

unmount_under() { # unmount_under DIR: undo our mounts inside DIR, newest first
	local i keep=()
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		case ${MOUNTS[i]} in
		"$1" | "$1"/*) umount "${MOUNTS[i]}" || umount -l "${MOUNTS[i]}" ;;
		*) keep=("${MOUNTS[i]}" "${keep[@]}") ;;
		esac
	done
	MOUNTS=("${keep[@]}")
}

remove_tree() { # never descend into a mount: a bound /dev would be emptied
	if findmnt -rn -o TARGET | grep -qE "^$1(/|$)"; then
		die "refusing to remove $1: something is mounted below it"
	fi
	rm -rf --one-file-system "$1"
}

# --- the Debian base -----------------------------------------------------------

# The mirrors apt uses on this machine, from its deb822 or one-line sources.
mirror_for() { # mirror_for SUITE
	local suite=$1 files=() f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
		[ ! -f "$f" ] || files+=("$f")
	done
	awk -v suite="$suite" '
		/^URIs:/ { uri = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = uri }
		/^deb / { for (i = 3; i <= NF; i++) if ($i == suite) found = $2 }
		END { if (found) print found }
	' "${files[@]}"
}
MIRROR=$(mirror_for "$SUITE")
SECURITY=$(mirror_for "$SUITE-security")
[ -n "$MIRROR" ] || die "no apt source for $SUITE in /etc/apt/sources.list*"

BASE=$CACHE/base-$SUITE-minbase
if [ ! -x "$BASE/bin/sh" ]; then
	say "debootstrap $SUITE (minbase) from $MIRROR into the cache"
	mkdir -p "$CACHE"
	remove_tree "$BASE.tmp"
	debootstrap --variant=minbase "$SUITE" "$BASE.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $CACHE/debootstrap.log"
	# What the debian:12 images list: the release, its updates, security.
	{
		echo "deb $MIRROR $SUITE main"
		echo "deb $MIRROR $SUITE-updates main"
		[ -z "$SECURITY" ] || echo "deb $SECURITY $SUITE-security main"
	} >"$BASE.tmp/etc/apt/sources.list"
	chroot "$BASE.tmp" apt-get clean
	mv "$BASE.tmp" "$BASE"
fi

base_for() { # base_for IMAGE: the cached root an image of the Dockerfile starts from
	case $1 in
	debian:12 | debian:12-slim | debian:bookworm | debian:bookworm-slim) echo "$BASE" ;;
	*) die "FROM $1: no debootstrap recipe for this image" ;;
	esac
}

# --- the build context, as .dockerignore filters it -----------------------------

CONTEXT=$CACHE/context
remove_tree "$CONTEXT"
mkdir -p "$CONTEXT"
git ls-files --cached --others --exclude-standard -z | python3 -c '
import os, re, shutil, sys

def rule(p):
    # Docker: * and ? stay inside one path element, ** crosses them; a
    # pattern that matches a directory covers everything below it.
    out = ""
    i = 0
    while i < len(p):
        if p.startswith("**", i):
            out += ".*"
            i += 2
        elif p[i] == "*":
            out += "[^/]*"
            i += 1
        elif p[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(p[i])
            i += 1
    return re.compile(out + "(/.*)?$")

rules = []
for line in open(".dockerignore", encoding="utf-8"):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    neg = line.startswith("!")
    pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
    rules.append((neg, rule(pattern)))

for path in sys.stdin.read().split("\0"):
    if not path or not os.path.lexists(path):
        continue
    included = True
    for neg, rx in rules:
        if rx.match(path):
            included = neg
    if included:
        dest = os.path.join(sys.argv[1], path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(path, dest, follow_symlinks=False)
' "$CONTEXT"
if find "$CONTEXT/rules" -mindepth 1 -maxdepth 1 ! -name schemas 2>/dev/null | grep -q .; then
	die "the build context holds conditions: $(ls "$CONTEXT/rules")"
fi

# --- the Dockerfile, instruction by instruction -------------------------------

# One instruction per line: comments dropped, continuation lines joined.
INSTRUCTIONS=()
while IFS= read -r line; do
	INSTRUCTIONS+=("$line")
done < <(sed -e '/^[[:space:]]*#/d' Dockerfile | sed -e ':a' -e '/\\$/{N;s/\\\n//;ba}' | grep -v '^[[:space:]]*$')

VERSION_ARG=$(git describe --always --dirty 2>/dev/null || echo dev)
declare -A STAGE_ROOT=()
declare -A BUILD_ARGS=([VERSION]="$VERSION_ARG")
STAGE=-1
RUN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# container_cmd ROOT USER WORKDIR ENV... -- COMMAND...: sets CMD to run
# COMMAND like a container's process (clean environment, the image's user and
# working directory). An array, not a function, so that `"${CMD[@]}" &`
# leaves $! naming the process itself.
container_cmd() {
	local root=$1 user=$2 dir=$3
	shift 3
	local env=()
	while [ "$1" != "--" ]; do
		env+=("$1")
		shift
	done
	shift
	# shellcheck disable=SC2016 # $0 and $@ belong to the inner shell
	CMD=(env -i PATH="$RUN_PATH" HOME=/root HOSTNAME=docker-check "${env[@]}"
		chroot --userspec="$user" "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$dir" "$@")
}

in_root() { # in_root: container_cmd's arguments, run to completion
	container_cmd "$@"
	"${CMD[@]}"
}

mount_runtime() { # mount_runtime ROOT: what the container runtime provides
	mount_at "$1/proc" -t proc proc
	mount_at "$1/dev" --bind /dev
}

resolve() { # resolve PATH: relative to the stage's WORKDIR
	case $1 in
	/*) echo "$1" ;;
	*) echo "${WORKDIR%/}/$1" ;;
	esac
}

do_copy() { # do_copy ARGS: COPY [--from=STAGE] SRC... DEST
	local from="" args=() src_root dest
	for a in $1; do
		case $a in
		--from=*) from=${a#--from=} ;;
		--*) die "COPY $a is not supported here" ;;
		*) args+=("$a") ;;
		esac
	done
	src_root=$CONTEXT
	if [ -n "$from" ]; then
		src_root=${STAGE_ROOT[$from]:-}
		[ -n "$src_root" ] || die "COPY --from=$from: no such stage"
	fi
	dest=$(resolve "${args[-1]}")
	unset 'args[-1]'
	local sources=() s
	for s in "${args[@]}"; do
		# globs expand in the source root, as COPY does
		local matches=()
		mapfile -t matches < <(cd "$src_root" && compgen -G "${s#/}")
		[ ${#matches[@]} -gt 0 ] || die "COPY $s: no such file in the ${from:-build context}"
		sources+=("${matches[@]}")
	done
	for s in "${sources[@]}"; do
		if [ -d "$src_root/$s" ]; then
			mkdir -p "$ROOTFS$dest"
			cp -a "$src_root/$s/." "$ROOTFS$dest/"
		elif [ "${dest: -1}" = / ] || [ ${#sources[@]} -gt 1 ]; then
			mkdir -p "$ROOTFS$dest"
			cp -a "$src_root/$s" "$ROOTFS$dest/"
		else
			mkdir -p "$(dirname "$ROOTFS$dest")"
			cp -a "$src_root/$s" "$ROOTFS$dest"
		fi
	done
	chown -R 0:0 "$ROOTFS$dest"
}

for instruction in "${INSTRUCTIONS[@]}"; do
	word=${instruction%%[[:space:]]*}
	rest=${instruction#"$word"}
	rest=${rest#"${rest%%[![:space:]]*}"}
	case ${word^^} in
	FROM)
		[ "$STAGE" -lt 0 ] || unmount_under "$ROOTFS"
		STAGE=$((STAGE + 1))
		read -r image _as name <<<"$rest"
		ROOTFS=$CACHE/stage-$STAGE
		remove_tree "$ROOTFS"
		say "stage $STAGE: FROM $image (copy of the $SUITE base)"
		cp -a "$(base_for "$image")" "$ROOTFS"
		cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
		mkdir -p "$CACHE/apt-archives/partial"
		mount_at "$ROOTFS/var/cache/apt/archives" --bind "$CACHE/apt-archives"
		mount_runtime "$ROOTFS"
		STAGE_ROOT[$STAGE]=$ROOTFS
		[ -z "${name:-}" ] || STAGE_ROOT[$name]=$ROOTFS
		WORKDIR=/
		USER_SPEC=0:0
		STAGE_ENV=()
		ENTRYPOINT=""
		EXPOSED=""
		name=""
		;;
	RUN)
		say "stage $STAGE: RUN $rest"
		in_root "$ROOTFS" "$USER_SPEC" "$WORKDIR" "${STAGE_ENV[@]}" -- /bin/sh -c "$rest" ||
			die "stage $STAGE: RUN $rest: exit $?"
		;;
	WORKDIR)
		WORKDIR=$(resolve "$rest")
		mkdir -p "$ROOTFS$WORKDIR"
		;;
	COPY)
		say "stage $STAGE: COPY $rest"
		do_copy "$rest"
		;;
	ARG)
		arg_name=${rest%%=*}
		arg_value=${BUILD_ARGS[$arg_name]:-${rest#*=}}
		[ "$arg_value" != "$rest" ] || arg_value=""
		STAGE_ENV+=("$arg_name=$arg_value")
		;;
	ENV)
		[[ $rest == *=* ]] || die "ENV $rest: only the NAME=value form is supported"
		STAGE_ENV+=("$rest")
		;;
	USER)
		uid=${rest%%:*}
		[[ $uid =~ ^[0-9]+$ ]] || die "USER $rest: the image's user must be numeric for runAsNonRoot"
		gid=$(awk -F: -v uid="$uid" '$3 == uid { print $4 }' "$ROOTFS/etc/passwd")
		[[ $rest != *:* ]] || gid=${rest#*:}
		USER_SPEC=$uid:${gid:-$uid}
		;;
	EXPOSE) EXPOSED=$rest ;;
	ENTRYPOINT) ENTRYPOINT=$rest ;;
	LABEL | CMD) ;;
	*) die "$word: not an instruction this check knows" ;;
	esac
done

# --- the image, as it would run ------------------------------------------------

[ -n "$ENTRYPOINT" ] || die "no ENTRYPOINT"
mapfile -t ENTRY < <(python3 -c 'import json, sys; print("\n".join(json.loads(sys.argv[1])))' "$ENTRYPOINT")
say "image: user $USER_SPEC, workdir $WORKDIR, expose $EXPOSED, entrypoint ${ENTRY[*]}"
[ "${USER_SPEC%%:*}" != 0 ] || die "the image runs as root"
if find "$ROOTFS/opt/gcs/rules" -mindepth 1 -maxdepth 1 ! -name schemas | grep -q .; then
	die "conditions are baked into the image"
fi
missing=$(chroot "$ROOTFS" ldd "${ENTRY[0]}" | grep 'not found' || true)
[ -z "$missing" ] || die "the runtime stage lacks libraries: $missing"

# The pod's volumes (deploy/: GCS_ROUTING_SCRIPT, GCS_UNLEASH_BACKUP): the
# routing ConfigMap as the kubelet writes it (files are symlinks through
# ..data into a timestamped directory) and an emptyDir for state.
POD_ROUTING=/opt/gcs/routing
POD_STATE=/var/run/gcs
POD=$CACHE/pod
remove_tree "$POD"
mkdir -p "$POD/routing/..2000_01_01_00_00_00.1" "$POD/state"
cp scripts/*.lua "$POD/routing/..2000_01_01_00_00_00.1/"
ln -s ..2000_01_01_00_00_00.1 "$POD/routing/..data"
for f in scripts/*.lua; do
	ln -s "..data/$(basename "$f")" "$POD/routing/$(basename "$f")"
done
chown -R "$USER_SPEC" "$POD/state"
# Mount points are made inside the root (/var/run is a symlink there), as
# the container runtime does before it makes the root read-only.
chroot "$ROOTFS" mkdir -p "$POD_ROUTING" "$POD_STATE"
routing_at=$ROOTFS$(chroot "$ROOTFS" readlink -f "$POD_ROUTING")
state_at=$ROOTFS$(chroot "$ROOTFS" readlink -f "$POD_STATE")

# Read-only root, as readOnlyRootFilesystem makes it.
unmount_under "$ROOTFS"
mount_at "$ROOTFS" --bind "$ROOTFS"
mount -o remount,bind,ro "$ROOTFS"
mount_runtime "$ROOTFS"
mount_at "$routing_at" --bind "$POD/routing"
mount -o remount,bind,ro "$routing_at"
mount_at "$state_at" --bind "$POD/state"
if in_root "$ROOTFS" "$USER_SPEC" / -- touch /probe-write 2>/dev/null; then
	die "the root filesystem is writable"
fi

SERVED=$CACHE/served
remove_tree "$SERVED"
mkdir -p "$SERVED"
cp -a rules/. "$SERVED/"
python3 -u -m http.server --bind 127.0.0.1 --directory "$SERVED" 0 >"$CACHE/http.log" 2>&1 &
PIDS+=($!)
port=""
for _ in $(seq 100); do
	port=$(sed -nE 's/.* port ([0-9]+) .*/\1/p' "$CACHE/http.log" | head -n 1)
	[ -z "$port" ] || break
	sleep 0.1
done
[ -n "$port" ] || die "the download server did not start: $(cat "$CACHE/http.log")"
URL="http://127.0.0.1:$port/{version}"

gcs_in_image() { # gcs_in_image STABLE CANARY ARGS...: sets CMD to the entrypoint as the pod runs it
	local stable=$1 canary=$2
	shift 2
	container_cmd "$ROOTFS" "$USER_SPEC" "$WORKDIR" "${STAGE_ENV[@]}" STABLE_VERSION="$stable" \
		CANARY_VERSION="$canary" GCS_CONDITIONS_URL="$URL" GCS_FETCH_TRIES=1 \
		GCS_ROUTING_SCRIPT="$POD_ROUTING/routing.lua" GCS_UNLEASH_BACKUP="$POD_STATE/unleash-backup.json" \
		GCS_RELOAD_INTERVAL=0.2 GCS_LISTEN=127.0.0.1:0 -- "${ENTRY[@]}" "$@"
}

say "gcs --check, stable 1.1.3 and canary 1.2.0 from $URL"
gcs_in_image 1.1.3 1.2.0 --check
"${CMD[@]}" || die "--check failed in the image (exit $?)"
say "gcs --check with a version the server does not have must fail"
gcs_in_image 9.9.9 none --check
if "${CMD[@]}"; then
	die "--check passed for a missing version"
fi

say "gcs serving from the image"
gcs_in_image 1.1.3 1.2.0
"${CMD[@]}" 2>"$CACHE/gcs.log" &
GCS_PID=$!
PIDS+=("$GCS_PID")
address=""
for _ in $(seq 300); do
	address=$(sed -nE 's/.*"msg":"listening".*"address":"([^"]+)".*/\1/p' "$CACHE/gcs.log" | head -n 1)
	[ -z "$address" ] || break
	kill -0 "$GCS_PID" 2>/dev/null || break
	sleep 0.1
done
[ -n "$address" ] || die "gcs did not listen: $(cat "$CACHE/gcs.log")"
for path in /healthz /readyz /metrics /api/gathering/v2/4.17.0/gathering_rules /api/gathering/gathering_rules; do
	status=$(curl -s -o /dev/null -w '%{http_code}' "http://$address$path")
	[ "$status" = 200 ] || die "GET $path: HTTP $status"
	say "GET $path: 200"
done

# An edit of the ConfigMap as the kubelet applies it: a new directory, then
# one rename of ..data. gcs must pick it up through the mount, no restart.
next=..2000_01_01_00_00_01.2
cp -a "$POD/routing/..2000_01_01_00_00_00.1" "$POD/routing/$next"
printf '\n-- edited through the ConfigMap\n' >>"$POD/routing/$next/routing.lua"
ln -s "$next" "$POD/routing/..data_tmp"
mv -T "$POD/routing/..data_tmp" "$POD/routing/..data"
reloaded=0
for _ in $(seq 200); do
	reloaded=$(grep -c '"msg":"routing script reloaded"' "$CACHE/gcs.log" || true)
	[ "$reloaded" -lt 1 ] || break
	sleep 0.1
done
[ "$reloaded" -ge 1 ] || die "gcs did not reload the routing script after the ..data swap: $(cat "$CACHE/gcs.log")"
say "routing script reloaded after the ConfigMap's ..data swap"

kill -TERM "$GCS_PID"
wait "$GCS_PID" || die "gcs exited $? after SIGTERM"

# Only the Debian base and apt's downloads are worth keeping; a failed run
# leaves the stages for a look.
cleanup
for ((i = 0; i <= STAGE; i++)); do
	remove_tree "$CACHE/stage-$i"
done
remove_tree "$CONTEXT"
remove_tree "$POD"
remove_tree "$SERVED"

say "passed in $(($(date +%s) - STARTED)) s"
