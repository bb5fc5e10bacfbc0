#!/bin/sh
#
# contrib/pgbouncer-repoint.sh
#      Example pg_hamonitor event hook: points a pgbouncer database entry at
#      the cluster's new primary after a failover or switchover.
#
# usage: pgbouncer-repoint.sh INI ADMIN_CONNINFO DATABASE KIND HOST PORT
#
#   INI             pgbouncer's configuration file (writable by the user
#                   the witness's PostgreSQL runs as)
#   ADMIN_CONNINFO  libpq connection string of pgbouncer's admin console,
#                   e.g. "host=127.0.0.1 port=6432 dbname=pgbouncer
#                   user=pgbouncer" (a user in admin_users; no password
#                   here: use a .pgpass file of the witness's OS user)
#   DATABASE        the entry of [databases] to repoint
#   KIND HOST PORT  pg_hamonitor's %k %h %p
#
# In the witness's postgresql.conf (placeholders unquoted: pg_hamonitor
# quotes them; quote your own arguments for the shell):
#
#   pg_hamonitor.event_command = '/usr/local/bin/pgbouncer-repoint.sh /etc/pgbouncer/pgbouncer.ini "host=127.0.0.1 port=6432 dbname=pgbouncer user=pgbouncer" appdb %k %h %p'
#   pg_hamonitor.event_command_kinds = 'promoted, switchover'
#
# The entry's host= and port= are replaced (added when missing), its other
# options kept; the file is rewritten through a temporary file and renamed,
# then RELOAD is issued on the admin console: new server connections go to
# the new primary, and pgbouncer closes those to the old one as they are
# released.  Other kinds are acknowledged and ignored.  Exit status 0 on
# success; anything else is recorded by the witness as hook_failed.
#
# Copyright (c) 2026, pg_hamonitor developers

set -eu

if [ $# -ne 6 ]; then
    echo "usage: $0 INI ADMIN_CONNINFO DATABASE KIND HOST PORT" >&2
    exit 2
fi
ini=$1 admin=$2 db=$3 kind=$4 host=$5 port=$6
PSQL=${PSQL:-psql}

case $kind in
    promoted|switchover) ;;
    *) echo "nothing to do for a $kind event"; exit 0 ;;
esac

# the values end up in an ini line: refuse anything that is not a plain
# host (name, address or socket directory) or port
case $host in
    ''|*[!A-Za-z0-9._:/-]*) echo "refusing host \"$host\"" >&2; exit 1 ;;
esac
case $port in
    ''|*[!0-9]*) echo "refusing port \"$port\"" >&2; exit 1 ;;
esac

tmp="$ini.hamonitor.$$"
cp -p "$ini" "$tmp"
trap 'rm -f "$tmp"' EXIT
awk -v db="$db" -v host="$host" -v port="$port" '
    function setopt(line, key, val,    re) {
        re = "(^|[ \t=])" key "=[^ \t]*"
        if (match(line, re)) {
            pre = substr(line, 1, RSTART - 1)
            lead = substr(line, RSTART, 1)
            if (lead != " " && lead != "\t" && lead != "=") lead = ""
            return pre lead key "=" val substr(line, RSTART + RLENGTH)
        }
        return line " " key "=" val
    }
    /^[ \t]*\[/ { section = $0; gsub(/[ \t\[\]]/, "", section) }
    section == "databases" && /^[ \t]*[^;#]/ {
        split($0, kv, "=")
        key = kv[1]; gsub(/^[ \t]+|[ \t]+$/, "", key)
        if (key == db) {
            eq = index($0, "=")
            name = substr($0, 1, eq)
            rest = substr($0, eq + 1)
            rest = setopt(rest, "host", host)
            rest = setopt(rest, "port", port)
            $0 = name rest
            found = 1
        }
    }
    { print }
    END { exit found ? 0 : 3 }
' "$ini" >"$tmp" || {
    echo "database \"$db\" not found in the [databases] section of $ini" >&2
    exit 1
}
mv "$tmp" "$ini"
trap - EXIT

"$PSQL" -X -q -d "$admin" -c RELOAD
echo "pgbouncer database $db now points at $host:$port (reloaded)"
