#!/bin/sh
# First start: a cluster in PGDATA with the role and database named by POSTGRES_USER and
# POSTGRES_DB, password auth when POSTGRES_PASSWORD is set (trust otherwise). Then postgres,
# listening on POSTGRES_LISTEN (default 127.0.0.1) and POSTGRES_PORT (default 5432).
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
BIN=/usr/lib/postgresql/15/bin
USER_NAME=${POSTGRES_USER:-vas}
DB_NAME=${POSTGRES_DB:-vas}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    method=trust
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then method=scram-sha-256; fi
    "$BIN/initdb" --pgdata="$PGDATA" --username=postgres --auth-local=trust \
        --auth-host="$method" --encoding=UTF8 >/dev/null
    "$BIN/pg_ctl" --pgdata="$PGDATA" --options="-c listen_addresses='' -c unix_socket_directories=/tmp" --wait start >/dev/null
    psql --host=/tmp --username=postgres --dbname=postgres --set=ON_ERROR_STOP=1 --quiet \
        --set=user="$USER_NAME" --set=db="$DB_NAME" --set=pw="${POSTGRES_PASSWORD:-}" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"user";
SQL
    "$BIN/pg_ctl" --pgdata="$PGDATA" --mode=fast --wait stop >/dev/null
    echo "postgres-entrypoint: initialised $PGDATA (role $USER_NAME, database $DB_NAME, $method)"
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses="${POSTGRES_LISTEN:-127.0.0.1}" \
    -p "${POSTGRES_PORT:-5432}" -c unix_socket_directories=/tmp
