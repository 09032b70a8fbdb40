#!/usr/bin/env bash
# A throwaway PostgreSQL from Debian's `postgresql` package for cluster-mode runs.
#   .ci/postgres.sh start DIR PORT   initdb into DIR (trust auth, user heraclitus), start on
#                                    127.0.0.1:PORT (fsync off, as the tests' own harness: the
#                                    smokes test clients, not PostgreSQL's durability, and a
#                                    busy CI disk must not stall commits), create database
#                                    heraclitus
#   .ci/postgres.sh createdb DIR PORT NAME
#   .ci/postgres.sh stop DIR
# PostgreSQL refuses to run as root: as root, its programs run as the postgres user.
set -euo pipefail
cmd=${1:?start|createdb|stop}
DIR=${2:?folder}
BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
  start)
    PORT=${3:?port}
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; chmod 755 "$(dirname "$DIR")" || true; fi
    as_pg "$BIN/initdb" -D "$DIR/data" --auth=trust -U heraclitus --no-sync >/dev/null
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U heraclitus heraclitus
    ;;
  createdb)
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "${3:?port}" -U heraclitus "${4:?name}"
    ;;
  stop)
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null || true
    rm -rf "$DIR"
    ;;
esac
