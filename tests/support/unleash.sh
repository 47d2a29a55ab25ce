#!/bin/sh
# A real, throwaway Unleash server for the end-to-end tests, on 127.0.0.1 only.
#
#   tests/support/unleash.sh start   install if needed, start PostgreSQL 15 and
#                                    Unleash, print the state (KEY=value lines)
#   tests/support/unleash.sh env     print the state of the running server
#   tests/support/unleash.sh stop    stop both and delete their files
#   tests/support/unleash.sh server-stop, server-start
#                                    stop the Unleash server alone and start it
#                                    again on the same port and database (an outage)
#
# The state file (UNLEASH_STATE, default tests/.cache/unleash-state.env) holds
# UNLEASH_URL (the API root, .../api), UNLEASH_ADMIN_TOKEN,
# UNLEASH_BACKEND_TOKEN, UNLEASH_ENVIRONMENT and what stop needs. Several
# servers can run at once, each with its own state file.
#
# Nothing here talks to any host but 127.0.0.1 once the npm packages are
# installed: version checks and telemetry are off.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/tests/.cache/unleash"
state=${UNLEASH_STATE:-$root/tests/.cache/unleash-state.env}
pgbin=/usr/lib/postgresql/15/bin

die() {
	echo "unleash.sh: $*" >&2
	exit 1
}

# PostgreSQL refuses to run as root.
as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# npm ci installs exactly the pinned tree; reused while the lock file is the same.
install() {
	if [ -f "$cache/package-lock.json" ] && cmp -s "$here/unleash/package-lock.json" "$cache/package-lock.json" &&
		[ -f "$cache/node_modules/unleash-server/dist/server.js" ]; then
		return 0
	fi
	mkdir -p "$cache"
	cp "$here/unleash/package.json" "$here/unleash/package-lock.json" "$cache/"
	(cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ||
		die "npm ci in $cache failed"
}

wait_for() { # what, tries (0.2 s each), command...
	what=$1
	tries=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.2
	done
	echo "unleash.sh: $what ready" >&2
}

start() {
	[ ! -f "$state" ] || die "already running (state in $state); run stop first"
	install

	tmp=$(mktemp -d /tmp/gcs-unleash.XXXXXX)
	chmod 755 "$tmp"
	mkdir "$tmp/pg"
	chown postgres "$tmp/pg" 2>/dev/null || true
	pg_port=$(free_port)
	http_port=$(free_port)
	secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	admin_token="*:*.$secret"
	backend_token="default:development.$secret"

	# Written first so that stop can clean up after a failed start.
	cat >"$state" <<-EOF
		UNLEASH_URL=http://127.0.0.1:$http_port/api
		UNLEASH_ADMIN_TOKEN=$admin_token
		UNLEASH_BACKEND_TOKEN=$backend_token
		UNLEASH_ENVIRONMENT=development
		UNLEASH_TMP=$tmp
		UNLEASH_PG_PORT=$pg_port
	EOF

	as_postgres "$pgbin/initdb" -D "$tmp/pg/data" -U postgres --auth=trust -E UTF8 \
		--no-instructions >"$tmp/initdb.log" 2>&1 || die "initdb failed, see $tmp/initdb.log"
	as_postgres "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/postgres.log" -w -t 30 start \
		-o "-c listen_addresses=127.0.0.1 -p $pg_port -k $tmp/pg -c fsync=off" >/dev/null ||
		die "PostgreSQL did not start, see $tmp/pg/postgres.log"

	echo "UNLEASH_HTTP_PORT=$http_port" >>"$state"
	run_server
	cat "$state"
}

# The Unleash server alone, on the state's port and database; its pid goes
# into the state file.
run_server() {
	(
		cd "$cache"
		HTTP_HOST=127.0.0.1 HTTP_PORT=$http_port \
			DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres" DATABASE_SSL=false \
			CHECK_VERSION=false SEND_TELEMETRY=false LOG_LEVEL=warn \
			INIT_ADMIN_API_TOKENS="$admin_token" INIT_BACKEND_API_TOKENS="$backend_token" \
			exec node node_modules/unleash-server/dist/server.js </dev/null >>"$tmp/unleash.log" 2>&1
	) &
	sed -i '/^UNLEASH_PID=/d' "$state"
	echo "UNLEASH_PID=$!" >>"$state"

	wait_for "Unleash on port $http_port" 300 \
		curl -fsS "http://127.0.0.1:$http_port/health" ||
		die "Unleash did not become healthy, see $tmp/unleash.log"
	# The tokens are seeded after the first migration; wait until the client API accepts them.
	wait_for "Unleash client API" 100 \
		curl -fsS -H "Authorization: $backend_token" "http://127.0.0.1:$http_port/api/client/features" ||
		die "backend token not accepted, see $tmp/unleash.log"
}

# An outage and its end: the server stops, PostgreSQL and the state stay, and
# server-start brings the same server back on the same port.
stop_server() {
	if [ -n "${UNLEASH_PID:-}" ] && kill "$UNLEASH_PID" 2>/dev/null; then
		for _ in $(seq 50); do
			kill -0 "$UNLEASH_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$UNLEASH_PID" 2>/dev/null || true
	fi
}

load_state() {
	[ -f "$state" ] || die "not running (no $state)"
	# shellcheck disable=SC1090
	. "$state"
	tmp=$UNLEASH_TMP
	pg_port=$UNLEASH_PG_PORT
	http_port=${UNLEASH_HTTP_PORT:?state file from an older unleash.sh; stop and start again}
	admin_token=$UNLEASH_ADMIN_TOKEN
	backend_token=$UNLEASH_BACKEND_TOKEN
}

stop() {
	[ -f "$state" ] || return 0
	# shellcheck disable=SC1090
	. "$state"
	stop_server
	if [ -n "${UNLEASH_TMP:-}" ] && [ -d "$UNLEASH_TMP/pg/data" ]; then
		as_postgres "$pgbin/pg_ctl" -D "$UNLEASH_TMP/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	case "${UNLEASH_TMP:-}" in
	/tmp/gcs-unleash.*) rm -rf "$UNLEASH_TMP" ;;
	esac
	rm -f "$state"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env)
	[ -f "$state" ] || die "not running (no $state)"
	cat "$state"
	;;
install) install ;;
server-stop)
	load_state
	stop_server
	sed -i '/^UNLEASH_PID=/d' "$state"
	;;
server-start)
	load_state
	run_server
	;;
*) die "usage: $0 start|stop|env|install|server-stop|server-start" ;;
esac
