#!/usr/bin/env bash
#
# test/bench/run-all.sh
#      Run the pg_hamonitor benchmarks: failover_time, false_failover,
#      probe_scale, history_cost, rpo, haproxy_failover, witness_takeover, isolation (see
#      test/bench/README.md).
#
#   test/bench/run-all.sh [--quick] [other options passed to every script]
#
# --quick runs each script once and short (the CI smoke pass).  Without it
# the full benchmarks run: about an hour on a 2-core machine.
# BENCH_SCRIPTS="failover_time probe_scale" runs a subset.
# PG_CONFIG=/path/to/pg_config benchmarks that installation (its bindir's
# servers; BENCH_INSTALL=1 installs there).
# probe_scale.pl above 2,000 nodes needs pgbouncer (its pooled mode) and
# many open files: this script, as root, raises the limit to 65536 (or
# to the hard limit where root cannot go above it) before switching user.
#
# PostgreSQL refuses to run as root, so:
#   - as root, the tree (without .git and build output) is copied to a
#     fresh directory owned by the "postgres" user, the open-files limit is
#     raised, and the scripts run there as "postgres"; the copy is kept
#     (its test/bench/out/ holds the logs) and its path printed.
#     BENCH_INSTALL=1 also builds and installs the extension first
#     (make && make install, as root, from the checkout).
#   - as any other user, the scripts run in place (the tree must be
#     writable); pg_hamonitor must already be installed.
#
# Each script prints its RESULT lines; this script prints them all again at
# the end.  Its exit status is non-zero if any script failed to set up or
# run (a missed target is not a failure: it is printed as MISSED).
#
# Copyright (c) 2026, pg_hamonitor developers

set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGXS_PERL=$(dirname "$("$PG_CONFIG" --pgxs)")/../test/perl
# the servers of that installation (HamonBench.pm takes PG_BINDIR), so that
# PG_CONFIG=<a private copy's pg_config> benchmarks what is installed there
export PG_BINDIR=${PG_BINDIR:-$("$PG_CONFIG" --bindir)}
BENCH_USER=${BENCH_USER:-postgres}
SCRIPTS=${BENCH_SCRIPTS:-failover_time false_failover probe_scale history_cost rpo haproxy_failover witness_takeover isolation}

if [ "$(id -u)" -eq 0 ]; then
    if [ "${BENCH_INSTALL:-0}" = 1 ]; then
        make -C "$REPO_DIR" PG_CONFIG="$PG_CONFIG" &&
            make -C "$REPO_DIR" install PG_CONFIG="$PG_CONFIG" || exit 1
    fi
    getent passwd "$BENCH_USER" >/dev/null ||
        { echo "run-all.sh: user $BENCH_USER does not exist" >&2; exit 1; }
    work=$(mktemp -d /tmp/pg_hamonitor_bench.XXXXXX)
    tar -C "$REPO_DIR" -cf - --exclude=./.git --exclude='./tmp_check*' \
        --exclude=./test/bench/out --exclude='*.o' --exclude='*.bc' \
        --exclude='*.so' . | tar -C "$work" -xf - --no-same-owner
    chown -R "$BENCH_USER:" "$work"
    echo "==> benchmark tree: $work (run as $BENCH_USER)"
    # 1000 probe connections need more open files than the default 1024
    # (a container without CAP_SYS_RESOURCE cannot go above its hard limit:
    # then the hard limit)
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    quoted=$(printf ' %q' "$@")
    exec runuser -u "$BENCH_USER" -- env TMPDIR=/tmp BENCH_SCRIPTS="$SCRIPTS" \
        PG_CONFIG="$PG_CONFIG" PG_BINDIR="$PG_BINDIR" bash -c "cd $work && exec bash test/bench/run-all.sh$quoted"
fi

cd "$REPO_DIR" || exit 1
status=0
results=$(mktemp)
for s in $SCRIPTS; do
    echo "==> $s $*"
    start=$(date +%s)
    perl -I "$PGXS_PERL" -I test/perl -I test/bench "test/bench/$s.pl" "$@" |
        tee -a "$results"
    rc=${PIPESTATUS[0]}
    echo "==> $s exit status $rc after $(( $(date +%s) - start ))s"
    [ "$rc" -eq 0 ] || status=1
done
echo "==> all results ($(uptime))"
grep -E '^(RESULT|.*SETUP FAILED|.*FAILED \(exit)' "$results"
rm -f "$results"
exit $status
