#!/usr/bin/env bash
# Start (or stop) a throw-away PostgreSQL server on 127.0.0.1 for tests and benchmarks.
#   scripts/postgres.sh start   -> prints the database URL (also written to .pg/url)
#   scripts/postgres.sh stop
# Runs the server as the `postgres` user (it refuses to run as root).
set -euo pipefail
PORT=${AVREC_PG_PORT:-55432}
DIR=${AVREC_PG_DIR:-/tmp/avrec-pg-$PORT}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-start}" in
  start)
    if [ -z "$PGBIN" ]; then echo "PostgreSQL is not installed (run scripts/system-deps.sh)" >&2; exit 1; fi
    if ! as_pg "$PGBIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      rm -rf "$DIR"; mkdir -p "$DIR"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
      as_pg "$PGBIN/initdb" -D "$DIR" -A trust -U postgres -E UTF8 >/dev/null
      as_pg "$PGBIN/pg_ctl" -D "$DIR" -l "$DIR/log" -w \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -k /tmp -c fsync=on" start >/dev/null
    fi
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres avrec_test 2>/dev/null || true
    echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/avrec_test"
    ;;
  stop)
    [ -n "$PGBIN" ] && as_pg "$PGBIN/pg_ctl" -D "$DIR" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2;;
esac
