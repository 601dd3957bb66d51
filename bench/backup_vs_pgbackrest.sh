#!/usr/bin/env bash
# Benchmark: pgdbre's backup repository vs pgBackRest 2.45 (Debian `pgbackrest`), side by side in
# one run against the same lab database (pgbench scale SCALE, data checksums on), both with zstd
# level 3 and 2 processes, both on local disk:
#   1. full backup: time and repository size;
#   2. incremental after a scattered UPDATE of 1 % of pgbench_accounts: time and repository growth;
#   3. restore of the latest backup into an empty directory: time;
#   4. WAL archiving under a pgbench write load (archive_command = each tool's push, SECONDS each):
#      segments archived, failures, the largest `archive_status/*.ready` backlog seen.
# Prints each ratio (pgdbre / pgBackRest; < 1 is faster or smaller) and appends rows to
# bench/RESULTS.md.
#
# Usage: bench/backup_vs_pgbackrest.sh [SCALE] [SECONDS]      (defaults 200 ≈ 3.2 GB, 30)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SCALE=${1:-200}
SECONDS_OF_LOAD=${2:-30}
DIR=${PGDBRE_BENCH_DIR:-/tmp/pgdbre-bench-backup}
PGDBRE=target/release/pgdbre
JOBS=2
LEVEL=3

./scripts/setup.sh
cargo build --release --quiet
command -v pgbackrest >/dev/null || { echo "pgbackrest not found (Debian package pgbackrest)" >&2; exit 1; }

cleanup() {
  "$PGDBRE" lab down --dir "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
start_lab cleanup
DATA="$DIR/primary/data"
WORK="$DIR/work"
mkdir -p "$WORK/bin"
# The server runs archive_command as the `postgres` OS user: give it a copy of pgdbre it can run.
install -m 0755 "$PGDBRE" "$WORK/bin/pgdbre"
PGDBRE_REPO="$WORK/pgdbre-repo"
PGBR_REPO="$WORK/pgbackrest-repo"
PGBR_CONF="$WORK/pgbackrest.conf"
mkdir -p "$PGDBRE_REPO" "$PGBR_REPO" "$WORK/pgbackrest-log" "$WORK/spool"
cat >"$PGBR_CONF" <<CONF
[global]
repo1-path=$PGBR_REPO
compress-type=zst
compress-level=$LEVEL
process-max=$JOBS
start-fast=y
log-path=$WORK/pgbackrest-log
lock-path=$WORK/pgbackrest-log
spool-path=$WORK/spool
log-level-console=warn

[bench]
pg1-path=$DATA
pg1-socket-path=$PGHOST
pg1-port=$PGPORT
pg1-user=postgres
CONF
chown -R postgres: "$WORK"
chmod 0755 "$DIR"
as_postgres() { runuser -u postgres -- env PGPASSFILE="$DIR/pgpass.server" "$@"; }
pgbr() { as_postgres pgbackrest --config="$PGBR_CONF" --stanza=bench "$@"; }
pgdbre_cmd() { as_postgres "$WORK/bin/pgdbre" "$@"; }
# Wall-clock seconds of a command, its output discarded (shown on failure).
timed() {
  local start end
  start=$(date +%s.%N)
  if ! "$@" >"$WORK/last.log" 2>&1; then cat "$WORK/last.log" >&2; echo "failed: $*" >&2; exit 1; fi
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l | xargs printf '%.2f'
}
bytes() { du -sb "$1" | cut -f1; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
mb() { echo "$1 / 1000000" | bc -l | xargs printf '%.0f'; }

echo "creating pgbench scale $SCALE ..." >&2
psql -X -q -d postgres -c "CREATE DATABASE bench"
pgbench -i -s "$SCALE" -q --no-vacuum >/dev/null 2>&1
psql -X -q -c "VACUUM ANALYZE" -c "CHECKPOINT"
db_bytes=$(psql -X -At -c "SELECT pg_database_size('bench')")
echo "database: $(mb "$db_bytes") MB" >&2

pgbr stanza-create >/dev/null
dsn="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
common=(--repo "$PGDBRE_REPO" --pgdata "$DATA" --jobs "$JOBS" --compress-level "$LEVEL")

echo "full backups ..." >&2
pgbr_full=$(timed pgbr backup --type=full --no-archive-check)
pgbr_full_size=$(bytes "$PGBR_REPO/backup")
pgdbre_full=$(timed pgdbre_cmd backup --type full --fast "${common[@]}" "$dsn")
pgdbre_full_size=$(bytes "$PGDBRE_REPO")

echo "1 % scattered UPDATE, then incremental backups ..." >&2
psql -X -q -c "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0" -c "CHECKPOINT"
pgbr_incr=$(timed pgbr backup --type=incr --no-archive-check)
pgbr_incr_growth=$(( $(bytes "$PGBR_REPO/backup") - pgbr_full_size ))
pgdbre_incr=$(timed pgdbre_cmd backup --type incr --fast "${common[@]}" "$dsn")
pgdbre_incr_growth=$(( $(bytes "$PGDBRE_REPO") - pgdbre_full_size ))

echo "restores into empty directories ..." >&2
restore_dir="$WORK/restore"
mkdir -p "$restore_dir" && chown postgres: "$restore_dir" && chmod 0700 "$restore_dir"
pgbr_restore=$(timed pgbr restore --pg1-path="$restore_dir")
rm -rf "$restore_dir" && mkdir -p "$restore_dir" && chown postgres: "$restore_dir" && chmod 0700 "$restore_dir"
pgdbre_restore=$(timed pgdbre_cmd restore --repo "$PGDBRE_REPO" --pgdata "$restore_dir" --jobs "$JOBS")
rm -rf "$restore_dir"

# Archives SECONDS_OF_LOAD seconds of pgbench writes through archive_command $1; prints
# "archived failed max_backlog tps".
archive_under_load() {
  psql -X -q -c "ALTER SYSTEM SET archive_command = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
  psql -X -q -c "SELECT pg_switch_wal()" >/dev/null
  local before failed_before
  before=$(psql -X -At -c "SELECT archived_count FROM pg_stat_archiver")
  failed_before=$(psql -X -At -c "SELECT failed_count FROM pg_stat_archiver")
  pgbench -n -c 8 -j 2 -T "$SECONDS_OF_LOAD" -N >"$WORK/pgbench.log" 2>&1 &
  local load=$! max=0 now
  while kill -0 "$load" 2>/dev/null; do
    now=$(find "$DATA/pg_wal/archive_status" -name '*.ready' | wc -l)
    [ "$now" -gt "$max" ] && max=$now
    sleep 0.5
  done
  wait "$load"
  # Let the archiver drain what the load left, up to a minute, then read the counters.
  for _ in $(seq 120); do
    [ "$(find "$DATA/pg_wal/archive_status" -name '*.ready' | wc -l)" -eq 0 ] && break
    sleep 0.5
  done
  local after failed_after tps
  after=$(psql -X -At -c "SELECT archived_count FROM pg_stat_archiver")
  failed_after=$(psql -X -At -c "SELECT failed_count FROM pg_stat_archiver")
  tps=$(grep -Eo 'tps = [0-9.]+' "$WORK/pgbench.log" | head -n 1 | cut -d' ' -f3)
  echo "$((after - before)) $((failed_after - failed_before)) $max ${tps:-0}"
}
echo "WAL archiving under pgbench, ${SECONDS_OF_LOAD}s each ..." >&2
read -r pgbr_archived pgbr_failed pgbr_backlog pgbr_tps < <(archive_under_load \
  "pgbackrest --config=$PGBR_CONF --stanza=bench archive-push %p")
read -r pgdbre_archived pgdbre_failed pgdbre_backlog pgdbre_tps < <(archive_under_load \
  "$WORK/bin/pgdbre wal push --repo $PGDBRE_REPO %p")

cat <<EOF
database: pgbench scale $SCALE, $(mb "$db_bytes") MB; zstd $LEVEL, $JOBS processes, local repositories
                      pgdbre        pgBackRest    ratio
full backup           ${pgdbre_full} s        ${pgbr_full} s        $(ratio "$pgdbre_full" "$pgbr_full")x time
full repository       $(mb "$pgdbre_full_size") MB        $(mb "$pgbr_full_size") MB        $(ratio "$pgdbre_full_size" "$pgbr_full_size")x size
incremental (1 %)     ${pgdbre_incr} s        ${pgbr_incr} s        $(ratio "$pgdbre_incr" "$pgbr_incr")x time
incremental growth    $(mb "$pgdbre_incr_growth") MB        $(mb "$pgbr_incr_growth") MB        $(ratio "$pgdbre_incr_growth" "$pgbr_incr_growth")x size
restore               ${pgdbre_restore} s        ${pgbr_restore} s        $(ratio "$pgdbre_restore" "$pgbr_restore")x time
archiving ${SECONDS_OF_LOAD}s load    ${pgdbre_archived} seg, ${pgdbre_failed} failed, backlog ≤${pgdbre_backlog} (${pgdbre_tps} tps)    ${pgbr_archived} seg, ${pgbr_failed} failed, backlog ≤${pgbr_backlog} (${pgbr_tps} tps)
targets: backup and restore time <= 0.67x (>= 1.5x faster) at <= 1.0x size; archiving backlog no worse
EOF

{
  echo "| $(date +%F) | $(uname -m), $(nproc) cores | \`bench/backup_vs_pgbackrest.sh $SCALE $SECONDS_OF_LOAD\` | full ${pgdbre_full} s / $(mb "$pgdbre_full_size") MB; incr ${pgdbre_incr} s / +$(mb "$pgdbre_incr_growth") MB; restore ${pgdbre_restore} s; archive ${pgdbre_archived} seg, ${pgdbre_failed} failed, backlog ≤${pgdbre_backlog} | full ${pgbr_full} s / $(mb "$pgbr_full_size") MB; incr ${pgbr_incr} s / +$(mb "$pgbr_incr_growth") MB; restore ${pgbr_restore} s; archive ${pgbr_archived} seg, ${pgbr_failed} failed, backlog ≤${pgbr_backlog} | full $(ratio "$pgdbre_full" "$pgbr_full")x, size $(ratio "$pgdbre_full_size" "$pgbr_full_size")x, incr $(ratio "$pgdbre_incr" "$pgbr_incr")x, restore $(ratio "$pgdbre_restore" "$pgbr_restore")x |"
} >>bench/RESULTS.md
