#!/usr/bin/env bash
# Point-in-time recovery drill (docs/OPERATIONS.md, "Runbooks" → "Postgres restore drill"), self-contained
# on loopback with Debian's PostgreSQL 15: a throw-away primary with WAL archiving, a base backup,
# good rows, a noted time, a mistake (a DELETE), a WAL switch; then the base backup is restored into a
# new data directory and replayed from the archive up to the noted time. The drill passes when every
# row written before that time is back (including those written after the base backup, which only
# the archive holds) and the mistake is not.
#
# Usage: scripts/pitr-drill.sh
# Environment (all optional):
#   PG_BIN        PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   DRILL_ROWS    rows written before and after the base backup, each (default 1000)
#   DRILL_KEEP=1  keep the temporary directory (data directories, archive, logs) for inspection
#
# Prints each step with its duration and a summary; exits non-zero when a step fails or a check does
# not hold. Everything lives in one temporary directory under /tmp; both servers and the directory
# are removed on exit, whatever happens. As root, the servers run as the `postgres` user (initdb and
# postgres refuse root), like scripts/lib/services.sh does.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh" # svc_as_pg, svc_is_root, svc_pick_port, SVC_PG_BIN

PG="$SVC_PG_BIN"
ROWS="${DRILL_ROWS:-1000}"
[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || { echo "DRILL_ROWS must be a positive number" >&2; exit 2; }
for tool in initdb pg_ctl postgres psql pg_basebackup pg_verifybackup; do
    [[ -x "$PG/$tool" ]] || { echo "error: $PG/$tool not found (install postgresql-15 or set PG_BIN)" >&2; exit 2; }
done

WORK="$(mktemp -d /tmp/pitr-drill.XXXXXX)"
PRIMARY="$WORK/primary"     # the server that makes the mistake
ARCHIVE="$WORK/wal-archive" # archive_command copies every finished WAL segment here
BASE="$WORK/base-backup"    # pg_basebackup -Ft -z output: base.tar.gz, pg_wal.tar.gz, backup_manifest
RESTORED="$WORK/restored"   # the base backup restored and replayed up to the target time
SOCKETS="$WORK/sockets"
chmod 755 "$WORK"
mkdir -p "$ARCHIVE" "$BASE" "$RESTORED" "$SOCKETS"
chmod 700 "$ARCHIVE" "$BASE" "$RESTORED"
if svc_is_root; then chown postgres:postgres "$WORK" "$ARCHIVE" "$BASE" "$RESTORED" "$SOCKETS"; fi

DRILL_START=$EPOCHREALTIME
STEP_START=""
STEP_NAME=""
SUMMARY=()
FAILED=1

ms_since() { # <EPOCHREALTIME reading> -> milliseconds elapsed
    local start="$1" now="$EPOCHREALTIME"
    echo $(( (${now/./} - ${start/./}) / 1000 ))
}

step() { # <name>: ends the previous step (printing its time) and starts this one
    end_step
    STEP_NAME="$1"
    STEP_START=$EPOCHREALTIME
    printf '==> %s\n' "$STEP_NAME"
}

end_step() {
    [[ -n "$STEP_NAME" ]] || return 0
    local ms
    ms="$(ms_since "$STEP_START")"
    printf '    done in %d ms\n' "$ms"
    SUMMARY+=("$(printf '%6d ms  %s' "$ms" "$STEP_NAME")")
    STEP_NAME=""
}

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# Stops a server of ours by its data directory (immediate: nothing in it is worth a checkpoint).
stop_server() { # <datadir>
    [[ -f "$1/postmaster.pid" ]] || return 0
    svc_as_pg "$PG/pg_ctl" -D "$1" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

cleanup() {
    local rc=$? started=$EPOCHREALTIME
    stop_server "$RESTORED"
    stop_server "$PRIMARY"
    if ((rc != 0 || FAILED)); then
        for log in "$PRIMARY.log" "$RESTORED.log"; do
            [[ -f "$log" ]] || continue
            printf -- '--- last lines of %s\n' "$log" >&2
            tail -n 25 "$log" >&2
        done
    fi
    if [[ "${DRILL_KEEP:-0}" == 1 ]]; then
        echo "kept $WORK (DRILL_KEEP=1)"
    else
        rm -rf "$WORK"
    fi
    echo "cleaned up (servers stopped, temporary files removed) in $(ms_since "$started") ms"
    if ((rc == 0 && FAILED)); then rc=1; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_at() { # <port> <sql...>: one value per line, no decoration; as the superuser on loopback
    local port="$1"
    shift
    "$PG/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d drill "$@"
}

wait_until() { # <seconds> <what> <command...>: polls every 0.1 s
    local seconds="$1" what="$2" i
    shift 2
    for ((i = 0; i < seconds * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    fail "timed out after ${seconds}s waiting for $what"
}

# --- 1. the primary --------------------------------------------------------------------------------

step "initdb a primary with archive_mode=on (data $PRIMARY)"
svc_as_pg "$PG/initdb" -D "$PRIMARY" -U postgres -A trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log" >&2; fail "initdb"; }
PRIMARY_PORT="$(svc_pick_port)"
svc_as_pg tee -a "$PRIMARY/postgresql.conf" >/dev/null <<EOF
# --- pitr-drill.sh
listen_addresses = '127.0.0.1'
port = $PRIMARY_PORT
unix_socket_directories = '$SOCKETS'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $ARCHIVE/%f && cp %p $ARCHIVE/%f'
archive_timeout = 0
logging_collector = off
EOF

step "start the primary on 127.0.0.1:$PRIMARY_PORT"
svc_as_pg "$PG/pg_ctl" -D "$PRIMARY" -l "$PRIMARY.log" -w -t 60 start >/dev/null || fail "the primary did not start"
"$PG/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -c 'CREATE DATABASE drill' >/dev/null
psql_at "$PRIMARY_PORT" -c "CREATE TABLE drill_rows (id bigint PRIMARY KEY, phase text NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())"

step "write $ROWS rows before the base backup"
psql_at "$PRIMARY_PORT" -c "INSERT INTO drill_rows (id, phase) SELECT g, 'before-backup' FROM generate_series(1, $ROWS) g"

# --- 2. the base backup ----------------------------------------------------------------------------

step "pg_basebackup -Ft -z -X stream -c fast (into $BASE)"
svc_as_pg "$PG/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$BASE" -Ft -z -X stream -c fast \
    >"$WORK/basebackup.log" 2>&1 || { cat "$WORK/basebackup.log" >&2; fail "pg_basebackup"; }
BACKUP_BYTES="$(du -cb "$BASE"/*.tar.gz | tail -n 1 | cut -f 1)"
echo "    $(ls "$BASE" | tr '\n' ' ')($BACKUP_BYTES bytes compressed)"

# --- 3. more good rows, the target time, the mistake -----------------------------------------------

step "write $ROWS more rows after the backup (only the WAL archive has them)"
psql_at "$PRIMARY_PORT" -c "INSERT INTO drill_rows (id, phase) SELECT g, 'after-backup' FROM generate_series($ROWS + 1, 2 * $ROWS) g"
sleep 0.2 # commit timestamps have microseconds; a gap keeps the target clearly between the commits
TARGET_TIME="$(psql_at "$PRIMARY_PORT" -c "SELECT clock_timestamp()")"
sleep 0.2
echo "    recovery target time: $TARGET_TIME"

step "the mistake: DELETE FROM drill_rows, then a row written after it"
psql_at "$PRIMARY_PORT" -c "DELETE FROM drill_rows"
psql_at "$PRIMARY_PORT" -c "INSERT INTO drill_rows (id, phase) VALUES (0, 'after-mistake')"
MISTAKE_ROWS="$(psql_at "$PRIMARY_PORT" -c "SELECT count(*) FROM drill_rows")"
[[ "$MISTAKE_ROWS" == 1 ]] || fail "the primary should hold 1 row after the mistake, holds $MISTAKE_ROWS"

step "pg_switch_wal() and wait until the segment is archived"
SWITCHED_WAL="$(psql_at "$PRIMARY_PORT" -c "SELECT pg_walfile_name(pg_switch_wal())")"
echo "    last segment: $SWITCHED_WAL"
wait_until 60 "$SWITCHED_WAL in the archive" test -f "$ARCHIVE/$SWITCHED_WAL"
ARCHIVED="$(find "$ARCHIVE" -maxdepth 1 -type f | wc -l)"
echo "    $ARCHIVED files in the archive; pg_stat_archiver: $(psql_at "$PRIMARY_PORT" -c \
    "SELECT 'archived ' || archived_count || ', failed ' || failed_count FROM pg_stat_archiver")"

step "stop the primary (the disaster: its data directory is no longer trusted)"
svc_as_pg "$PG/pg_ctl" -D "$PRIMARY" -m fast -w -t 60 stop >/dev/null

# --- 4. the restore --------------------------------------------------------------------------------

step "restore the base backup into a new data directory ($RESTORED) and verify it"
svc_as_pg tar -xzf "$BASE/base.tar.gz" -C "$RESTORED"
# pg_wal.tar.gz is left out on purpose: every segment recovery needs comes from the archive, which is
# what a real restore has (and what this drill tests). pg_verifybackup checks the files against the
# backup manifest and parses the WAL the backup needs from the archive.
svc_as_pg "$PG/pg_verifybackup" -m "$BASE/backup_manifest" -w "$ARCHIVE" "$RESTORED" >"$WORK/verify.log" 2>&1 \
    || { cat "$WORK/verify.log" >&2; fail "pg_verifybackup"; }
sed 's/^/    /' "$WORK/verify.log"
RESTORED_PORT="$(svc_pick_port)"
[[ "$RESTORED_PORT" != "$PRIMARY_PORT" ]] || RESTORED_PORT="$(svc_pick_port)"
svc_as_pg tee -a "$RESTORED/postgresql.conf" >/dev/null <<EOF
# --- pitr-drill.sh: the restored copy
port = $RESTORED_PORT
archive_mode = off
restore_command = 'cp $ARCHIVE/%f %p'
recovery_target_time = '$TARGET_TIME'
recovery_target_action = 'promote'
EOF
svc_as_pg touch "$RESTORED/recovery.signal"

step "start it: replay the archive up to $TARGET_TIME, then promote"
svc_as_pg "$PG/pg_ctl" -D "$RESTORED" -l "$RESTORED.log" -w -t 120 start >/dev/null || fail "the restored server did not start"
in_production() { [[ "$(psql_at "$RESTORED_PORT" -c 'SELECT pg_is_in_recovery()')" == f ]]; }
wait_until 120 "the restored server to finish recovery" in_production
grep -E 'recovery stopping|last completed transaction|selected new timeline|archive recovery complete' "$RESTORED.log" \
    | sed -E 's/^[^]]*(LOG|\] LOG): +//; s/^/    /' || true

# --- 5. the checks ---------------------------------------------------------------------------------

step "check the restored rows"
BEFORE="$(psql_at "$RESTORED_PORT" -c "SELECT count(*) FROM drill_rows WHERE phase = 'before-backup'")"
AFTER="$(psql_at "$RESTORED_PORT" -c "SELECT count(*) FROM drill_rows WHERE phase = 'after-backup'")"
LATE="$(psql_at "$RESTORED_PORT" -c "SELECT count(*) FROM drill_rows WHERE phase = 'after-mistake'")"
echo "    rows written before the backup: $BEFORE/$ROWS; after the backup: $AFTER/$ROWS; after the mistake: $LATE (want 0)"
[[ "$BEFORE" == "$ROWS" ]] || fail "rows from before the base backup are missing ($BEFORE of $ROWS)"
[[ "$AFTER" == "$ROWS" ]] || fail "rows written after the base backup were not replayed from the archive ($AFTER of $ROWS)"
[[ "$LATE" == 0 ]] || fail "the restore went past the target time (the row written after the mistake is there)"
psql_at "$RESTORED_PORT" -c "INSERT INTO drill_rows (id, phase) VALUES (-1, 'written-after-restore')" \
    || fail "the restored server does not accept writes (not promoted?)"
TIMELINE="$("$PG/pg_controldata" "$RESTORED" 2>/dev/null | awk -F: '/TimeLineID/ && /Latest checkpoint/ { gsub(/ /, "", $2); print $2; exit }')"
echo "    the restored server accepts writes (timeline ${TIMELINE:-?})"
end_step

FAILED=0
echo
echo "PITR drill passed in $(ms_since "$DRILL_START") ms:"
printf '  %s\n' "${SUMMARY[@]}"
