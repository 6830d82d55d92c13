#!/bin/sh
# The container's entrypoint (also runs as is in a plain virtualenv: tests/test_lean_install.py).
#   serve [ARGS]   wait for the database, migrate, then `annae serve` on 0.0.0.0:$ANNAE_PORT
#   init           wait for the database and migrate (compose's one-shot `migrate` service)
#   anything else  runs `annae ARGS` (train, doctor, backup /backups/x, kb import FILE, ...)
set -eu
: "${ANNAE_HOME:=/data}"
: "${ANNAE_PORT:=8000}"
: "${ANNAE_WORKERS:=1}"
: "${ANNAE_DB_WAIT:=60}"
export ANNAE_HOME

log() {  # one JSON line, like the service's own logs
    printf '{"level": "%s", "logger": "annae-entrypoint", "event": "%s"}\n' "$1" \
        "$(printf '%s' "$2" | tr '"\\' "'/" | tr '\000-\037' ' ' | cut -c1-500)" >&2
}

wait_and_migrate() {
    waited=0
    until out=$(annae init 2>&1); do
        if [ "$waited" -ge "$ANNAE_DB_WAIT" ]; then
            log error "database not ready after ${ANNAE_DB_WAIT} s: $(printf "%s\n" "$out" | grep -v "sqlalche.me" | tail -n 1)"
            exit 1
        fi
        sleep 2
        waited=$((waited + 2))
    done
    log info "database migrated"
}

cmd="${1:-serve}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
    serve)
        wait_and_migrate
        exec annae serve --host "${ANNAE_BIND:-0.0.0.0}" --port "$ANNAE_PORT" --workers "$ANNAE_WORKERS" "$@" ;;
    init)
        wait_and_migrate ;;
    *)
        exec annae "$cmd" "$@" ;;
esac
