#!/usr/bin/env bash
#
# test/run-tests.sh
#      Run the whole pg_hamonitor test suite (pg_regress, then TAP).
#
# On a fresh Debian bookworm machine, as root (this is what CI runs):
#
#     sudo bash test/run-tests.sh
#
# As root it installs the build and test dependencies from Debian's archive,
# copies the source tree (without .git) to a fresh directory owned by the
# "postgres" user, builds it there as that user, installs it with "make
# install" as root and runs "make installcheck" as "postgres".  initdb
# refuses to run as root, and the checkout may sit in a directory that
# "postgres" cannot read, hence the copy; the checkout itself is never
# written to.
#
# As any other user it assumes the dependencies are installed, and builds
# and runs "make installcheck" in place (installing first only when the
# PostgreSQL library directory is writable).
#
# The servers are all temporary instances on ports chosen by pg_regress and
# by PostgreSQL::Test::Cluster; Debian's packaged cluster (15/main, port
# 5432) is neither needed nor touched.
#
# The output ends with prove's summary ("Result: PASS" or "Result: FAIL")
# and the exit status is non-zero whenever anything failed.
#
# Environment:
#     PG_CONFIG       pg_config to build against
#                     (default /usr/lib/postgresql/15/bin/pg_config)
#     COPT            extra compiler flags for the build (default -Werror;
#                     COPT= builds without it)
#     PROVE_FLAGS     extra prove flags (e.g. --verbose), added to the
#                     Makefile's own
#     SKIP_APT=1      as root, do not run apt-get (dependencies present)
#     KEEP_TEST_DIR=1 as root, keep the scratch copy even after success
#     LOG_TAIL_LINES  lines of each server/TAP log shown on failure (100)
#
# Copyright (c) 2026, pg_hamonitor developers
#
# IDENTIFICATION
#     test/run-tests.sh
#

set -euo pipefail

PG_MAJOR=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
BUILD_COPT=${COPT--Werror}
EXTRA_PROVE_FLAGS=${PROVE_FLAGS:-}
LOG_TAIL_LINES=${LOG_TAIL_LINES:-100}
TEST_USER=postgres
APT_PACKAGES=(
    "postgresql-$PG_MAJOR"            # server, initdb, pg_ctl, pgbench
    "postgresql-server-dev-$PG_MAJOR" # PGXS, pg_regress, PostgreSQL::Test::*
    libipc-run-perl                   # IPC::Run, needed by the TAP modules
    openssl                           # certificates for the TLS tests
    perl                              # prove, Test::More, Time::HiRes
    make
    gcc
    libc6-dev
    prometheus                        # promtool and a real Prometheus (032)
    haproxy                           # HAProxy in front of a cluster
    pgbouncer                         # pgbouncer repointed by a hook
)

# COPT and PROVE_FLAGS are make variables too: keep them out of the
# environment of the make processes, we pass them explicitly
unset COPT PROVE_FLAGS

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------

log() { printf '==> %s\n' "$*"; }
die() { printf 'run-tests.sh: error: %s\n' "$*" >&2; exit 1; }

PHASE_NAMES=()
PHASE_SECS=()
PHASE_START=0
CURRENT_PHASE=
LAST_PHASE=

phase_begin() {
    CURRENT_PHASE=$1
    PHASE_START=$(date +%s)
    log "phase: $CURRENT_PHASE"
}

phase_end() {
    local secs=$(( $(date +%s) - PHASE_START ))
    PHASE_NAMES+=("$CURRENT_PHASE")
    PHASE_SECS+=("$secs")
    log "phase $CURRENT_PHASE done in ${secs}s"
    LAST_PHASE=$CURRENT_PHASE
    CURRENT_PHASE=
}

print_timings() {
    local i
    log "phase durations:"
    for i in "${!PHASE_NAMES[@]}"; do
        printf '    %-14s %5ss\n' "${PHASE_NAMES[$i]}" "${PHASE_SECS[$i]}"
    done
    if [ -n "$CURRENT_PHASE" ]; then
        printf '    %-14s %5ss (failed)\n' "$CURRENT_PHASE" \
            "$(( $(date +%s) - PHASE_START ))"
    fi
    printf '    %-14s %5ss\n' total "$(( $(date +%s) - SCRIPT_START ))"
}

# prove_summary LOGFILE: print prove's closing lines from a make log, from
# "All tests successful." or "Test Summary Report" to "Result: ..."
prove_summary() {
    awk '
        /^(All tests successful\.|Test Summary Report)$/ { buf = ""; grab = 1 }
        grab { buf = buf $0 "\n" }
        grab && /^Result: / { out = buf; grab = 0 }
        END { printf "%s", out }
    ' "$1"
}

# show_failure_details DIR TAP_RAN SUMMARY: regression.diffs and the tails
# of the server and TAP logs under DIR.  PG15's pg_regress writes
# initdb.log and postmaster.log to log/, the TAP tests write to
# tmp_check/log/ (regress_log_NNN_name, NNN_name_NODE.log).  Once the TAP
# tests ran (TAP_RAN=1), pg_regress had passed and its logs are noise; when
# prove's SUMMARY names the failed test files, only their logs are shown.
show_failure_details() {
    local dir=$1 tap_ran=$2 summary=$3 f t
    local -a where=(-path "$dir/tmp_check*/log/*") failed=()
    if [ "$tap_ran" != 1 ]; then
        where=(\( -path "$dir/log/*" -o "${where[@]}" \))
    else
        while read -r t; do
            t=$(basename "$t" .pl)
            failed+=(-name "regress_log_$t" -o -name "${t}_*.log" -o)
        done < <(printf '%s\n' "$summary" |
                 sed -n 's/^\([^[:space:]]*\.pl\)[[:space:]]\{1,\}(Wstat:.*/\1/p')
        if [ "${#failed[@]}" -gt 0 ]; then
            unset 'failed[${#failed[@]}-1]'     # the trailing -o
            where+=(\( "${failed[@]}" \))
        fi
    fi
    if [ -s "$dir/regression.diffs" ]; then
        log "regression.diffs:"
        cat "$dir/regression.diffs"
    fi
    while IFS= read -r f; do
        # a TAP log's tail is the cleanup; show what led to each failure too
        if [[ $f == */regress_log_* ]] && grep -q '#   Failed test' "$f"; then
            log "failed tests in $f (with the 15 lines before each):"
            grep -B 15 -A 3 '#   Failed test' "$f" || true
        fi
        log "tail -n $LOG_TAIL_LINES $f"
        tail -n "$LOG_TAIL_LINES" "$f" || true
    done < <(find "$dir" -path "$dir/.git" -prune -o \
                  "${where[@]}" -type f -print 2>/dev/null | sort)
}

# The temporary instances take their locale and encoding from the
# environment, and the expected output assumes UTF-8 (psql aligns
# non-ASCII names by display width); a CI job may have no locale set,
# which would give SQL_ASCII.  C.UTF-8 is built into Debian's C library.
pin_locale() {
    unset LC_ALL LC_CTYPE LC_COLLATE LC_MESSAGES LC_NUMERIC LC_TIME \
          LC_MONETARY LANGUAGE
    export LANG=C.UTF-8
}

SCRIPT_START=$(date +%s)
WORK_DIR=
INSTALLCHECK_LOG=
FINISHING=0

# any other exit with an error (apt-get, a missing tool...) still says
# where it happened and how long things took
# shellcheck disable=SC2317  # invoked by the EXIT trap
on_exit() {
    local status=$?
    if [ "$status" -ne 0 ] && [ "$FINISHING" = 0 ]; then
        print_timings
        log "pg_hamonitor tests FAILED in phase ${CURRENT_PHASE:-setup} (exit status $status)"
    fi
}
trap on_exit EXIT

# the Makefile adds its own -I test/perl to whatever PROVE_FLAGS we pass
ALL_PROVE_FLAGS="${EXTRA_PROVE_FLAGS}"

# installed_is_current PKGLIBDIR SHAREDIR: the installed SQL scripts and
# control file are those of this tree, and no C file is newer than the
# installed library (the library itself cannot be compared byte for byte:
# its debug information holds the build directory)
installed_is_current() {
    local f
    for f in "$REPO_DIR"/sql/pg_hamonitor--*.sql "$REPO_DIR/pg_hamonitor.control"; do
        cmp -s "$f" "$2/extension/$(basename "$f")" || return 1
    done
    [ -z "$(find "$REPO_DIR/src" \( -name "*.c" -o -name "*.h" \) \
               -newer "$1/pg_hamonitor.so" -print -quit)" ]
}

# run_installcheck DIR [RUNNER...]: make installcheck in DIR, output shown
# and saved; returns make's status
run_installcheck() {
    local dir=$1; shift
    INSTALLCHECK_LOG=$(mktemp /tmp/pg_hamonitor_installcheck.XXXXXX)
    if (cd "$dir" &&
        "$@" make --no-print-directory installcheck \
            PG_CONFIG="$PG_CONFIG" PROVE_FLAGS="$ALL_PROVE_FLAGS" \
            </dev/null 2>&1) | tee "$INSTALLCHECK_LOG"; then
        return 0
    else
        return 1
    fi
}

# finish STATUS DIR: diagnostics, timings, and prove's summary last
finish() {
    local status=$1 dir=$2 summary='' tap_ran=0
    FINISHING=1
    if [ -n "$INSTALLCHECK_LOG" ] && [ -f "$INSTALLCHECK_LOG" ]; then
        summary=$(prove_summary "$INSTALLCHECK_LOG")
        if grep -q '^+++ tap install-check' "$INSTALLCHECK_LOG"; then
            tap_ran=1
        fi
        rm -f "$INSTALLCHECK_LOG"
    fi
    if [ "$status" -ne 0 ]; then
        show_failure_details "$dir" "$tap_ran" "$summary"
    fi
    print_timings
    if [ "$status" -ne 0 ]; then
        if [ -n "$WORK_DIR" ]; then
            log "test tree kept for inspection: $WORK_DIR"
        fi
        if [ -z "$summary" ]; then
            log "pg_hamonitor tests FAILED in phase ${CURRENT_PHASE:-$LAST_PHASE}" \
                "(the TAP tests did not run)"
            exit 1
        fi
    fi
    log "prove summary:"
    printf '%s\n' "$summary"
    exit "$status"
}

# ---------------------------------------------------------------------
# main
# ---------------------------------------------------------------------

pin_locale
log "pg_hamonitor test run: $REPO_DIR as $(id -un), PG_CONFIG=$PG_CONFIG"

if [ "$(id -u)" -eq 0 ]; then
    # -- dependencies ----------------------------------------------------
    phase_begin deps
    if [ "${SKIP_APT:-0}" = 1 ]; then
        log "SKIP_APT=1: not running apt-get"
    else
        export DEBIAN_FRONTEND=noninteractive
        apt-get update </dev/null
        # the packaged services (prometheus, haproxy, pgbouncer, the
        # postgresql cluster) must not start on install: the tests start
        # their own instances on loopback.  A policy-rc.d that exits 101
        # forbids it; one already there is left alone.
        own_policy=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            own_policy=1
        fi
        apt_status=0
        apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}" \
            </dev/null || apt_status=$?
        if [ "$own_policy" = 1 ]; then
            rm -f /usr/sbin/policy-rc.d
        fi
        [ "$apt_status" = 0 ] || die "apt-get install failed ($apt_status)"
    fi
    [ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found (postgresql-server-dev-$PG_MAJOR)"
    getent passwd "$TEST_USER" >/dev/null ||
        die "user \"$TEST_USER\" does not exist (it comes with postgresql-common)"
    phase_end

    # -- scratch copy owned by postgres ---------------------------------
    phase_begin copy
    WORK_DIR=$(mktemp -d /tmp/pg_hamonitor_test.XXXXXX)
    # copy the sources only: no .git, no build or test output of earlier runs
    tar -C "$REPO_DIR" -cf - \
        --exclude=./.git --exclude='./tmp_check*' --exclude=./results \
        --exclude='./regression.*' --exclude=./log \
        --exclude='*.o' --exclude='*.so' --exclude='*.bc' . |
        tar -C "$WORK_DIR" -xf - --no-same-owner
    chown -R "$TEST_USER:" "$WORK_DIR"
    log "test tree: $WORK_DIR"
    phase_end

    # everything the postgres user runs starts in the scratch tree, with a
    # temporary directory it can use
    as_test_user() {
        runuser -u "$TEST_USER" -- env TMPDIR=/tmp "$@"
    }

    # -- build (as postgres) and install (as root) -----------------------
    phase_begin build
    if ! (cd "$WORK_DIR" &&
          as_test_user make --no-print-directory PG_CONFIG="$PG_CONFIG" \
              COPT="$BUILD_COPT" </dev/null); then
        finish 1 "$WORK_DIR"
    fi
    phase_end

    phase_begin install
    if ! make --no-print-directory -C "$WORK_DIR" install \
            PG_CONFIG="$PG_CONFIG" COPT="$BUILD_COPT" </dev/null; then
        finish 1 "$WORK_DIR"
    fi
    phase_end

    # -- tests (as postgres) ----------------------------------------------
    phase_begin installcheck
    status=0
    run_installcheck "$WORK_DIR" as_test_user || status=1
    phase_end
    if [ "$status" -eq 0 ] && [ "${KEEP_TEST_DIR:-0}" != 1 ]; then
        rm -rf "$WORK_DIR"
        WORK_DIR=
    fi
    finish "$status" "${WORK_DIR:-$REPO_DIR}"
else
    # -- not root: dependencies assumed, everything happens in place ------
    [ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found; as root this script installs postgresql-server-dev-$PG_MAJOR"
    [ -w "$REPO_DIR" ] || die "$REPO_DIR is not writable by $(id -un)"

    phase_begin build
    if ! make --no-print-directory -C "$REPO_DIR" PG_CONFIG="$PG_CONFIG" \
            COPT="$BUILD_COPT" </dev/null; then
        finish 1 "$REPO_DIR"
    fi
    phase_end

    phase_begin install
    pkglibdir=$("$PG_CONFIG" --pkglibdir)
    sharedir=$("$PG_CONFIG" --sharedir)
    if [ -w "$pkglibdir" ] && [ -w "$sharedir/extension" ]; then
        if ! make --no-print-directory -C "$REPO_DIR" install \
                PG_CONFIG="$PG_CONFIG" COPT="$BUILD_COPT" </dev/null; then
            finish 1 "$REPO_DIR"
        fi
    elif [ ! -f "$pkglibdir/pg_hamonitor.so" ]; then
        die "pg_hamonitor is not installed in $pkglibdir and that directory is not writable: run as root, or run 'make install' as root first"
    elif ! installed_is_current "$pkglibdir" "$sharedir"; then
        log "WARNING: the installed pg_hamonitor is older than this tree, and the"
        log "WARNING: tests use the installed copy: run 'make install' as root"
    else
        log "the installed pg_hamonitor matches this tree"
    fi
    phase_end

    phase_begin installcheck
    status=0
    run_installcheck "$REPO_DIR" || status=1
    phase_end
    finish "$status" "$REPO_DIR"
fi
