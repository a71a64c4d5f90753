#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for scripts/test and scripts/bench. Source it after
# _bootstrap.sh, then call `provide_postgres`: it exports LICENSING_TEST_POSTGRES_URL (a running
# cluster, stopped on exit) or LICENSING_TEST_POSTGRES_SKIP (the reason there is none).
# Inputs:
#   LICENSING_TEST_POSTGRES_URL   if already set, that server is used and no cluster is started
#   LICENSING_TEST_POSTGRES_SKIP  if already set (non-empty), PostgreSQL is skipped
#   LICENSING_INSTALL_POSTGRES=1  (or CI non-empty) lets root install postgresql with apt-get


PG_BIN=""
PG_TMP=""
PG_STARTED=0

# Prints the directory holding initdb + pg_ctl (newest /usr/lib/postgresql first, then PATH).
find_pg_bin() {
    local dir
    while IFS= read -r dir; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -V -r)
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

install_postgres() {
    log "PostgreSQL binaries not found: installing them with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || return 1
    local pkg=postgresql
    if apt-cache show postgresql-15 >/dev/null 2>&1; then
        pkg=postgresql-15
    fi
    apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null </dev/null
}

# Runs a PostgreSQL server binary: as the postgres user when we are root (initdb and
# pg_ctl refuse to run as root), directly otherwise. Runs from $PG_TMP so that the
# postgres user never needs access to the caller's working directory.
pg_run() {
    if is_root; then
        (cd "$PG_TMP" && runuser -u postgres -- "$@")
    else
        (cd "$PG_TMP" && "$@")
    fi
}

# shellcheck disable=SC2317  # invoked via trap
stop_postgres() {
    # Finish the cleanup even if stderr is a closed pipe or Ctrl-C is pressed again.
    trap '' PIPE INT TERM
    set +e
    if [ "$PG_STARTED" = 1 ] && [ -f "$PG_TMP/data/postmaster.pid" ]; then
        log "Stopping PostgreSQL"
        pg_run "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || pg_run "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w -t 30 stop >/dev/null 2>&1 \
            || warn "could not stop PostgreSQL (data directory $PG_TMP/data)"
        PG_STARTED=0
    fi
    if [ -n "$PG_TMP" ] && [ -d "$PG_TMP" ]; then
        rm -rf "$PG_TMP"
    fi
    PG_TMP=""
}

trap stop_postgres EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE   # e.g. `scripts/test | head`: still clean up (handler, so children keep the default)

free_port() {
    "$VENV/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

start_postgres() {
    if is_root && ! id -u postgres >/dev/null 2>&1; then
        die "running as root but there is no 'postgres' user to run PostgreSQL as (initdb refuses root)"
    fi
    local port
    port="$(free_port)"
    PG_TMP="$(mktemp -d /tmp/licensing-pg.XXXXXX)"
    is_root && chown postgres: "$PG_TMP"

    local version
    version="$("$PG_BIN/pg_ctl" --version 2>/dev/null | awk '{print $3}')"
    log "Starting throwaway PostgreSQL $version on 127.0.0.1:$port ($PG_TMP)"
    if ! pg_run "$PG_BIN/initdb" -D "$PG_TMP/data" -A trust -U postgres -E UTF8 --no-locale --no-sync \
            >"$PG_TMP/initdb.log" 2>&1; then
        cat "$PG_TMP/initdb.log" >&2
        die "initdb failed (output above)"
    fi
    PG_STARTED=1   # from here on, always try to stop it on exit
    if ! pg_run "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w -t 60 \
            -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
        printf -- '----- PostgreSQL log (%s/log) -----\n' "$PG_TMP" >&2
        cat "$PG_TMP/log" >&2 2>/dev/null || true
        printf -- '-----------------------------------\n' >&2
        die "PostgreSQL failed to start (log above)"
    fi
    export LICENSING_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    PG_VERSION="$version"
}

# shellcheck disable=SC2034  # read by the scripts that source this file
PG_VERSION=""

provide_postgres() {
    if [ -n "${LICENSING_TEST_POSTGRES_SKIP:-}" ]; then
        log "LICENSING_TEST_POSTGRES_SKIP is set: PostgreSQL tests will be skipped"
        unset LICENSING_TEST_POSTGRES_URL
    elif [ -n "${LICENSING_TEST_POSTGRES_URL:-}" ]; then
        log "Using the PostgreSQL server from LICENSING_TEST_POSTGRES_URL (no throwaway cluster)"
        unset LICENSING_TEST_POSTGRES_SKIP
    else
        unset LICENSING_TEST_POSTGRES_URL LICENSING_TEST_POSTGRES_SKIP
        if ! PG_BIN="$(find_pg_bin)"; then
            PG_BIN=""
            if is_root && command -v apt-get >/dev/null 2>&1 \
                    && { [ -n "${CI:-}" ] || [ "${LICENSING_INSTALL_POSTGRES:-}" = 1 ]; }; then
                install_postgres || warn "apt-get could not install PostgreSQL"
                PG_BIN="$(find_pg_bin)" || PG_BIN=""
            fi
        fi
        if [ -n "$PG_BIN" ]; then
            start_postgres
        else
            reason="PostgreSQL binaries not found: the PostgreSQL tests will be skipped (install postgresql-15, e.g. 'apt-get install postgresql-15', or run with LICENSING_INSTALL_POSTGRES=1 as root)"
            warn "$reason"
            export LICENSING_TEST_POSTGRES_SKIP="$reason"
        fi
    fi
}
