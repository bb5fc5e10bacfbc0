#!/usr/bin/env bash
#
# test/demo.sh
#      Start a pg_hamonitor demo: a witness watching a primary and a standby.
#
#     sudo bash test/demo.sh          # (re)build, install and start the demo
#     sudo bash test/demo.sh status   # show what the witness sees
#     sudo bash test/demo.sh stop     # stop the servers, remove the demo
#
# As root (on a fresh Debian bookworm machine) it installs the same packages
# as test/run-tests.sh, builds pg_hamonitor in a scratch copy of the tree and
# installs it, then runs three servers as the "postgres" user, all under
# /tmp/pg_hamonitor_demo, listening on 127.0.0.1 only, with trust
# authentication on loopback:
#
#     witness  port 5440  pg_hamonitor preloaded, probing every 500 ms,
#                         its HTTP endpoint on 127.0.0.1:8008
#     pg1      port 5441  primary
#     pg2      port 5442  streaming standby of pg1 (pg_basebackup -R)
#
# As another user it assumes pg_hamonitor is installed already and runs the
# servers as that user.  Running it again first tears down the previous
# demo.  The servers are left running at the end.
#
# Environment:
#     PG_CONFIG   pg_config to build against
#                 (default /usr/lib/postgresql/15/bin/pg_config)
#     SKIP_APT=1  as root, do not run apt-get (dependencies present)
#
# Copyright (c) 2026, pg_hamonitor developers
#
# IDENTIFICATION
#     test/demo.sh
#

set -euo pipefail

PG_MAJOR=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
DEMO_DIR=/tmp/pg_hamonitor_demo
HOST=127.0.0.1
WITNESS_PORT=5440
PRIMARY_PORT=5441
STANDBY_PORT=5442
HTTP_PORT=8008
WAIT_SECS=30
APT_PACKAGES=(
    "postgresql-$PG_MAJOR"
    "postgresql-server-dev-$PG_MAJOR"
    libipc-run-perl
    perl
    make
    gcc
    libc6-dev
)

# COPT is a make variable: keep a caller's value out of our builds' way
unset COPT

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=$REPO_DIR/test/demo.sh
# the servers' user may not be able to read the caller's directory
cd /

log() { printf '==> %s\n' "$*"; }
die() { printf 'demo.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    echo "usage: bash test/demo.sh [start|status|stop]" >&2
    exit 2
}

# RUN_PREFIX and AS_DEMO_USER_PREFIX: how the printed hints run a command
# as root, and as the servers' user
if [ "$(id -u)" -eq 0 ]; then
    IS_ROOT=1
    DEMO_USER=postgres
    if [ -n "${SUDO_USER:-}" ]; then
        RUN_PREFIX="sudo "
        AS_DEMO_USER_PREFIX="sudo -u $DEMO_USER "
    else
        RUN_PREFIX=
        AS_DEMO_USER_PREFIX="runuser -u $DEMO_USER -- "
    fi
else
    IS_ROOT=0
    DEMO_USER=$(id -un)
    RUN_PREFIX=
    AS_DEMO_USER_PREFIX=
fi

# as_demo_user CMD...: run a command as the user owning the servers
as_demo_user() {
    if [ "$IS_ROOT" = 1 ]; then
        runuser -u "$DEMO_USER" -- env TMPDIR=/tmp "$@"
    else
        "$@"
    fi
}

bindir() {
    [ -x "$PG_CONFIG" ] ||
        die "$PG_CONFIG not found: run this script as root to install postgresql-server-dev-$PG_MAJOR"
    "$PG_CONFIG" --bindir
}

# psql on the witness, quiet, stopping at the first error
witness_psql() {
    as_demo_user "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -P pager=off \
        -h "$HOST" -p "$WITNESS_PORT" -U postgres -d postgres "$@"
}

# port_in_use PORT: true when something accepts TCP connections on it
port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# ---------------------------------------------------------------------
# teardown
# ---------------------------------------------------------------------

stop_demo() {
    local node pg_ctl=
    if [ -x "$PG_CONFIG" ]; then
        pg_ctl="$("$PG_CONFIG" --bindir)/pg_ctl"
    fi
    if [ -d "$DEMO_DIR" ]; then
        for node in witness standby primary; do
            [ -f "$DEMO_DIR/$node/postmaster.pid" ] || continue
            [ -n "$pg_ctl" ] || die "a demo server is running but $PG_CONFIG is missing"
            log "stopping $node"
            as_demo_user "$pg_ctl" -D "$DEMO_DIR/$node" -m fast -w -s stop ||
                log "($node was not running)"
        done
        log "removing $DEMO_DIR"
        rm -rf "$DEMO_DIR" ||
            die "could not remove $DEMO_DIR (was the demo started as root? then stop it as root)"
    fi
}

# ---------------------------------------------------------------------
# status
# ---------------------------------------------------------------------

show_status() {
    log "hamonitor.status on the witness (port $WITNESS_PORT):"
    witness_psql -c "
        SELECT cluster_name, node_name, role, health, timeline, lag_bytes,
               replay_lag, last_seen
          FROM hamonitor.status
         ORDER BY node_name"
    log "latest hamonitor.events:"
    witness_psql -c "
        SELECT event_time, cluster_name, node_name, kind, detail
          FROM (SELECT * FROM hamonitor.events
                 ORDER BY event_id DESC LIMIT 10) e
         ORDER BY event_id"
}

# ---------------------------------------------------------------------
# start
# ---------------------------------------------------------------------

install_and_build() {
    if [ "$IS_ROOT" = 1 ]; then
        if [ "${SKIP_APT:-0}" = 1 ]; then
            log "SKIP_APT=1: not running apt-get"
        else
            log "installing packages"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update </dev/null
            apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}" \
                </dev/null
        fi
        getent passwd "$DEMO_USER" >/dev/null ||
            die "user \"$DEMO_USER\" does not exist (it comes with postgresql-common)"
        BINDIR=$(bindir)

        # build in a copy owned by postgres, so the checkout stays untouched
        log "building pg_hamonitor in $DEMO_DIR/build"
        mkdir -p "$DEMO_DIR/build"
        tar -C "$REPO_DIR" -cf - \
            --exclude=./.git --exclude='./tmp_check*' --exclude=./results \
            --exclude='./regression.*' --exclude=./log \
            --exclude='*.o' --exclude='*.so' --exclude='*.bc' . |
            tar -C "$DEMO_DIR/build" -xf - --no-same-owner
        chown -R "$DEMO_USER:" "$DEMO_DIR"
        as_demo_user make --no-print-directory -C "$DEMO_DIR/build" \
            PG_CONFIG="$PG_CONFIG" </dev/null
        log "installing pg_hamonitor"
        make --no-print-directory -C "$DEMO_DIR/build" install \
            PG_CONFIG="$PG_CONFIG" </dev/null
    else
        BINDIR=$(bindir)
        mkdir -p "$DEMO_DIR"
        [ -f "$("$PG_CONFIG" --sharedir)/extension/pg_hamonitor.control" ] ||
            die "pg_hamonitor is not installed: run this script as root, or 'make install' as root first"
        log "not root: using the installed pg_hamonitor, servers run as $DEMO_USER"
    fi
}

# configure_node DIR PORT NAME: our settings, appended (the last one wins)
configure_node() {
    local dir=$DEMO_DIR/$1 port=$2 name=$3
    as_demo_user tee -a "$dir/postgresql.conf" >/dev/null <<EOF

# --- pg_hamonitor demo ---
listen_addresses = '$HOST'
port = $port
unix_socket_directories = '$DEMO_DIR'
cluster_name = '$name'
wal_keep_size = '256MB'
EOF
    as_demo_user tee "$dir/pg_hba.conf" >/dev/null <<EOF
# pg_hamonitor demo: trust, loopback only (never do this on a real network)
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
EOF
}

start_node() {
    local name=$1
    log "starting $name"
    as_demo_user "$BINDIR/pg_ctl" -D "$DEMO_DIR/$name" \
        -l "$DEMO_DIR/$name.log" -w -t 60 start >/dev/null ||
        { tail -n 30 "$DEMO_DIR/$name.log" >&2 || true; die "could not start $name"; }
}

init_node() {
    local name=$1
    log "initdb $name"
    as_demo_user "$BINDIR/initdb" -D "$DEMO_DIR/$name" -U postgres \
        -A trust -E UTF8 --locale=C --no-sync --no-instructions >/dev/null
}

start_demo() {
    local port i n ok

    stop_demo
    for port in "$WITNESS_PORT" "$PRIMARY_PORT" "$STANDBY_PORT" "$HTTP_PORT"; do
        ! port_in_use "$port" ||
            die "port $port on $HOST is in use by another program"
    done

    install_and_build
    mkdir -p "$DEMO_DIR"
    if [ "$IS_ROOT" = 1 ]; then
        chown "$DEMO_USER:" "$DEMO_DIR"
    fi

    # the witness: pg_hamonitor preloaded, one probe every 500 ms
    init_node witness
    configure_node witness "$WITNESS_PORT" witness
    as_demo_user tee -a "$DEMO_DIR/witness/postgresql.conf" >/dev/null <<EOF
shared_preload_libraries = 'pg_hamonitor'
pg_hamonitor.probe_interval = '500ms'
pg_hamonitor.http_port = $HTTP_PORT
pg_hamonitor.http_listen_addresses = '$HOST'
EOF

    # the primary, and a standby cloned from it
    init_node primary
    configure_node primary "$PRIMARY_PORT" pg1
    start_node primary

    log "pg_basebackup of the primary into standby"
    as_demo_user "$BINDIR/pg_basebackup" -h "$HOST" -p "$PRIMARY_PORT" \
        -U postgres -D "$DEMO_DIR/standby" -R -X stream -c fast --no-sync
    # the copied postgresql.conf says port 5441 and pg1; override both
    configure_node standby "$STANDBY_PORT" pg2
    start_node standby

    start_node witness

    log "CREATE EXTENSION pg_hamonitor and registering pg1 and pg2"
    witness_psql <<'EOF'
CREATE EXTENSION pg_hamonitor;
SELECT hamonitor.register_node('pg1', 'host=127.0.0.1 port=5441 user=postgres dbname=postgres', cluster_name => 'demo');
SELECT hamonitor.register_node('pg2', 'host=127.0.0.1 port=5442 user=postgres dbname=postgres', cluster_name => 'demo', priority => 100);
EOF

    log "writing on the primary (pgbench -i -s 1)"
    as_demo_user "$BINDIR/pgbench" -i -s 1 -q -h "$HOST" -p "$PRIMARY_PORT" \
        -U postgres postgres 2>&1 | tail -n 1

    log "waiting up to ${WAIT_SECS}s for the witness to see both nodes up"
    ok=0
    for ((i = 0; i < WAIT_SECS * 2; i++)); do
        n=$(witness_psql -At -c "SELECT count(*) FROM hamonitor.status
                                  WHERE cluster_name = 'demo'
                                    AND health = 'up'" 2>/dev/null || echo 0)
        if [ "$n" = 2 ]; then
            ok=1
            break
        fi
        sleep 0.5
    done

    if [ "$ok" != 1 ]; then
        log "the witness did not report both nodes up within ${WAIT_SECS}s"
        witness_psql -x -c "SELECT node_name, role, health, failures,
                                   last_error_sqlstate, last_error, conninfo
                              FROM hamonitor.status ORDER BY node_name" || true
        log "tail of $DEMO_DIR/witness.log:"
        tail -n 40 "$DEMO_DIR/witness.log" || true
        log "the servers are still running; stop them with: ${RUN_PREFIX}bash $SCRIPT stop"
        exit 1
    fi

    show_status

    cat <<EOF

The demo is running (logs in $DEMO_DIR/*.log):
    witness  psql -h $HOST -p $WITNESS_PORT -U postgres postgres
    pg1      psql -h $HOST -p $PRIMARY_PORT -U postgres postgres   (primary)
    pg2      psql -h $HOST -p $STANDBY_PORT -U postgres postgres   (standby)

The witness's HTTP endpoint (curl -i shows the status code):
    http://$HOST:$HTTP_PORT/health
    http://$HOST:$HTTP_PORT/primary/demo/pg1      200 while pg1 is the primary
    http://$HOST:$HTTP_PORT/replica/demo/pg2      200 while pg2 streams
    http://$HOST:$HTTP_PORT/replica/demo/pg2?lag=16MB
    http://$HOST:$HTTP_PORT/read-only/demo/pg2
    http://$HOST:$HTTP_PORT/clusters
    http://$HOST:$HTTP_PORT/metrics               Prometheus format

Applications connect with the URI the witness hands out:
    $(witness_psql -At -c "SELECT hamonitor.connection_uri('demo', dbname => 'postgres', \"user\" => 'postgres')" 2>/dev/null || echo '(hamonitor.connection_uri failed)')

On the witness, try:
    SELECT * FROM hamonitor.status;
    SELECT * FROM hamonitor.lsn_history ORDER BY probed_at DESC LIMIT 10;
    SELECT * FROM hamonitor.events ORDER BY event_id;

Stop the standby and watch its health change:
    ${AS_DEMO_USER_PREFIX}$BINDIR/pg_ctl -D $DEMO_DIR/standby stop
    ${RUN_PREFIX}bash $SCRIPT status

Stop and remove the demo:
    ${RUN_PREFIX}bash $SCRIPT stop
EOF
}

case "${1:-start}" in
    start)  start_demo ;;
    status) BINDIR=$(bindir); show_status ;;
    stop)   stop_demo; log "demo stopped" ;;
    *)      usage ;;
esac
