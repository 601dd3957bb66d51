#!/usr/bin/env bash
# Benchmark: `pgdbre wal push` vs pgBackRest 2.45 `archive-push` (Debian `pgbackrest`) as the
# archive_command, side by side in one run against the same one-node lab (PostgreSQL 15, pgbench
# scale SCALE), both with zstd level 3, 2 processes/jobs and a local repository; pgBackRest in its
# fastest mode (archive-async=y, process-max=2, spool path), pgdbre with `--jobs 2` (push ahead):
#   1. per-segment latency under load: archive_command is a wrapper that times each call (bash
#      $EPOCHREALTIME around the tool's command; the same wrapper, so the same overhead, for
#      both) while `pgbench -n -c 8 -j 2 -T SECONDS -N` writes, one tool after the other. Before
#      each tool's run the server's backlog is archived through that tool (pg_switch_wal, wait for
#      no `.ready`), then a CHECKPOINT (both loads write the same full-page images), so each tool
#      is measured on its own load. Reports calls, p50/p95/max latency, segments archived
#      (pg_stat_archiver delta, up to when the backlog left by the load is archived), failures,
#      the largest `archive_status/*.ready` backlog (polled every 0.25 s), the seconds needed
#      after the load to catch up, and pgbench's tps (archiving shares the CPU with the load).
#   2. backlog drain throughput: SEGMENTS consecutive segments of real pgbench WAL (archiving held
#      with an empty archive_command while pgbench writes: PostgreSQL keeps them `.ready`) are
#      copied into a scratch data directory: `pg_wal/`, `archive_status/*.ready` and a copy of
#      `global/pg_control`, which is all pgBackRest's archive-push reads (pg1-path points there,
#      its stanza is created there with --no-online; %p is an absolute path). A driver does what
#      PostgreSQL's archiver does with a backlog: one call per `.ready` file in name order,
#      `.ready` renamed to `.done` after each exit 0 (retry after 1 s on failure). Each tool
#      drains the same bytes from a warm page cache into a fresh repository/stanza, twice, in the
#      order pgBackRest, pgdbre, pgdbre, pgBackRest; each tool's faster drain is reported:
#      seconds, segments/s, MB/s of WAL, mean ms per call, repository size.
# Prints each figure for both tools and the ratio (pgdbre / pgBackRest for times, < 1 is faster;
# throughput as a multiple of pgBackRest's) and appends a row to bench/RESULTS.md.
#
# Usage: bench/wal_push_vs_pgbackrest.sh [SECONDS] [SEGMENTS] [SCALE]     (defaults 30, 64, 20)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SECONDS_OF_LOAD=${1:-30}
SEGMENTS=${2:-64}
SCALE=${3:-20}
DIR=${PGDBRE_BENCH_DIR:-/tmp/pgdbre-bench-wal}
PGDBRE=${CARGO_TARGET_DIR:-target}/release/pgdbre
JOBS=2
LEVEL=3
# How long the server may take to archive a backlog before the run is declared broken.
DRAIN_DEADLINE=300

./scripts/setup.sh
cargo build --release --quiet
command -v pgbackrest >/dev/null || { echo "pgbackrest not found (Debian package pgbackrest)" >&2; exit 1; }

WORK="$DIR/work"
cleanup() {
  # pgBackRest's async archiver outlives the archive_command that started it: let it finish
  # (it only runs while .ready files are left to push) before removing its directories.
  for _ in $(seq 100); do
    pgrep -f -- "--config=$WORK/" >/dev/null || break
    sleep 0.1
  done
  "$PGDBRE" lab down --dir "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
start_lab cleanup
DATA="$DIR/primary/data"
STATUS="$DATA/pg_wal/archive_status"
rm -rf "$WORK"
mkdir -p "$WORK/bin"
# The server runs archive_command as the `postgres` OS user: give it a copy of pgdbre it can run.
install -m 0755 "$PGDBRE" "$WORK/bin/pgdbre"

# The archive_command wrapper: runs the tool's command, then appends
# "<start µs> <elapsed µs> <exit status> <file>" to LOG. $EPOCHREALTIME: no extra process.
cat >"$WORK/bin/timed" <<'SH'
#!/bin/bash
log=$1
shift
t=$EPOCHREALTIME
"$@"
status=$?
u=$EPOCHREALTIME
start=${t//[!0-9]/}
end=${u//[!0-9]/}
echo "$start $((end - start)) $status ${*: -1}" >>"$log"
exit "$status"
SH
# The archiver stand-in for the drain: PG_WAL LOG CMD...; prints the drain's µs.
cat >"$WORK/bin/drain" <<'SH'
#!/bin/bash
set -u
export LC_ALL=C
pg_wal=$1 log=$2
shift 2
shopt -s nullglob
t=$EPOCHREALTIME
begin=${t//[!0-9]/}
failures=0
while :; do
  ready=("$pg_wal"/archive_status/*.ready)
  [ ${#ready[@]} -eq 0 ] && break
  name=${ready[0]##*/}
  name=${name%.ready}
  t=$EPOCHREALTIME
  "$@" "$pg_wal/$name" >&2
  status=$?
  u=$EPOCHREALTIME
  start=${t//[!0-9]/}
  end=${u//[!0-9]/}
  echo "$start $((end - start)) $status $name" >>"$log"
  if [ "$status" -eq 0 ]; then
    mv "$pg_wal/archive_status/$name.ready" "$pg_wal/archive_status/$name.done"
    failures=0
  else
    failures=$((failures + 1))
    [ "$failures" -ge 3 ] && { echo "drain: $name failed 3 times" >&2; exit 1; }
    sleep 1
  fi
done
t=$EPOCHREALTIME
echo $((${t//[!0-9]/} - begin))
SH
chmod 0755 "$WORK/bin/timed" "$WORK/bin/drain"

SCRATCH="$WORK/drain-pgdata"
mkdir -p "$WORK/pgdbre-repo" "$SCRATCH/global" "$SCRATCH/pg_wal/archive_status"
# pgbackrest_conf NAME PG1_PATH: a config with its own repository, spool, log and lock paths.
pgbackrest_conf() {
  mkdir -p "$WORK/$1/repo" "$WORK/$1/log" "$WORK/$1/spool"
  cat >"$WORK/$1.conf" <<CONF
[global]
repo1-path=$WORK/$1/repo
compress-type=zst
compress-level=$LEVEL
process-max=$JOBS
archive-async=y
spool-path=$WORK/$1/spool
log-path=$WORK/$1/log
lock-path=$WORK/$1/log
log-level-console=warn

[bench]
pg1-path=$2
pg1-socket-path=$PGHOST
pg1-port=$PGPORT
pg1-user=postgres
CONF
}
pgbackrest_conf pgbackrest "$DATA"
pgbackrest_conf pgbackrest-drain "$SCRATCH"
chown -R postgres: "$WORK"
chmod 0755 "$DIR"
as_postgres() { runuser -u postgres -- env PGPASSFILE="$DIR/pgpass.server" "$@"; }
pgbr() { as_postgres pgbackrest --config="$WORK/$1.conf" --stanza=bench "${@:2}"; }

ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
sql() { psql -X -At -c "$1"; }
ready_count() {
  local files
  shopt -s nullglob
  files=("$STATUS"/*.ready)
  shopt -u nullglob
  echo "${#files[@]}"
}
now_us() { local t=$EPOCHREALTIME; echo "${t//[!0-9]/}"; }
set_archive_command() {
  psql -X -q -d postgres -c "ALTER SYSTEM SET archive_command = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
}
# Waits until the server has archived every finished segment (none `.ready`); fails the run
# after DRAIN_DEADLINE seconds.
wait_archived() {
  local deadline=$((SECONDS + DRAIN_DEADLINE))
  while [ "$(ready_count)" -gt 0 ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "backlog not archived within ${DRAIN_DEADLINE}s" >&2; exit 1; }
    sleep 0.05
  done
}
# Latency statistics of a timing log (lines "<start µs> <elapsed µs> <status> <file>") for calls
# started at or after FROM_US: "calls p50_ms p95_ms max_ms mean_ms failed_calls".
latency_stats() {
  awk -v from="$2" '$1 >= from { print $2, $3 }' "$1" | sort -n -k1,1 | awk '
    { v[NR] = $1; sum += $1; if ($2 != 0) failed++ }
    END {
      if (NR == 0) { print "0 0 0 0 0 0"; exit }
      p50 = v[int((NR * 50 + 99) / 100)]; p95 = v[int((NR * 95 + 99) / 100)]
      printf "%d %.1f %.1f %.1f %.1f %d\n", NR, p50 / 1000, p95 / 1000, v[NR] / 1000, sum / NR / 1000, failed
    }'
}

echo "creating pgbench scale $SCALE (its WAL is not archived) ..." >&2
set_archive_command "true"
psql -X -q -d postgres -c "CREATE DATABASE bench"
pgbench -i -s "$SCALE" -q >/dev/null 2>&1
psql -X -q -c "CHECKPOINT" -c "SELECT pg_switch_wal()" >/dev/null
wait_archived
cp "$DATA/global/pg_control" "$SCRATCH/global/pg_control"
cp "$DATA/PG_VERSION" "$SCRATCH/PG_VERSION"
chown -R postgres: "$SCRATCH"
pgbr pgbackrest stanza-create >/dev/null

# Phase 1. under_load NAME COMMAND: archive_command = the timed COMMAND, the backlog drained
# through it, then SECONDS_OF_LOAD seconds of pgbench; prints
# "calls p50 p95 max mean failed_calls archived failed max_backlog catch_up_s tps".
under_load() {
  local log="$WORK/latency-$1.log"
  set_archive_command "$WORK/bin/timed $log $2 %p"
  psql -X -q -c "SELECT pg_switch_wal()" >/dev/null
  wait_archived
  # Both loads start right after a checkpoint, so both write the same full-page images.
  psql -X -q -c "CHECKPOINT" -c "SELECT pg_switch_wal()" >/dev/null
  wait_archived
  sleep 1
  local from before failed_before
  from=$(now_us)
  before=$(sql "SELECT archived_count FROM pg_stat_archiver")
  failed_before=$(sql "SELECT failed_count FROM pg_stat_archiver")
  pgbench -n -c 8 -j 2 -T "$SECONDS_OF_LOAD" -N >"$WORK/pgbench-$1.log" 2>&1 &
  local load=$! max=0 now
  while kill -0 "$load" 2>/dev/null; do
    now=$(ready_count)
    [ "$now" -gt "$max" ] && max=$now
    sleep 0.25
  done
  wait "$load"
  local ended caught_up
  ended=$(now_us)
  wait_archived
  caught_up=$(now_us)
  local after failed_after tps
  after=$(sql "SELECT archived_count FROM pg_stat_archiver")
  failed_after=$(sql "SELECT failed_count FROM pg_stat_archiver")
  tps=$(grep -Eo 'tps = [0-9.]+' "$WORK/pgbench-$1.log" | head -n 1 | cut -d' ' -f3)
  echo "$(latency_stats "$log" "$from") $((after - before)) $((failed_after - failed_before)) $max" \
    "$(echo "($caught_up - $ended) / 1000000" | bc -l | xargs printf '%.2f')" "$(printf '%.0f' "${tps:-0}")"
}
echo "WAL archiving under pgbench -N -c 8, ${SECONDS_OF_LOAD}s per tool ..." >&2
result=$(under_load pgbackrest "pgbackrest --config=$WORK/pgbackrest.conf --stanza=bench archive-push")
read -r br_calls br_p50 br_p95 br_max _ br_failed_calls br_archived br_failed br_backlog br_catchup br_tps <<<"$result"
result=$(under_load pgdbre "$WORK/bin/pgdbre wal push --repo $WORK/pgdbre-repo --jobs $JOBS")
read -r db_calls db_p50 db_p95 db_max _ db_failed_calls db_archived db_failed db_backlog db_catchup db_tps <<<"$result"

# Phase 2. A backlog of SEGMENTS segments: archiving held (empty archive_command: PostgreSQL
# only warns and keeps the files .ready), pgbench writes until enough are finished.
echo "writing a backlog of $SEGMENTS segments with archiving held ..." >&2
set_archive_command ""
psql -X -q -c "SELECT pg_switch_wal()" >/dev/null
while [ "$(ready_count)" -lt "$SEGMENTS" ]; do
  pgbench -n -c 8 -j 2 -T 2 -N >/dev/null 2>&1
done
mapfile -t backlog < <(cd "$STATUS" && find . -maxdepth 1 -name '*.ready' -printf '%f\n' |
  sed 's/\.ready$//' | grep -E '^[0-9A-F]{24}$' | LC_ALL=C sort | head -n "$SEGMENTS")
[ "${#backlog[@]}" -eq "$SEGMENTS" ] || { echo "only ${#backlog[@]} segments in the backlog" >&2; exit 1; }
for name in "${backlog[@]}"; do cp "$DATA/pg_wal/$name" "$SCRATCH/pg_wal/$name"; done
chown -R postgres: "$SCRATCH"
# The server's own copies are not needed any more.
set_archive_command "true"
wal_bytes=$(stat -c %s "${backlog[@]/#/$SCRATCH/pg_wal/}" | paste -sd+ | bc)

# drain TOOL ROUND: the scratch backlog (all .ready again, warm page cache) through TOOL into a
# fresh repository; prints "seconds segments_per_s MB_per_s mean_ms_per_call failed_calls
# repository_bytes".
drain() {
  local log="$WORK/drain-$1-$2.log" repo command
  rm -f "$SCRATCH"/pg_wal/archive_status/*
  rm -rf "$SCRATCH/pg_wal/pgdbre-spool"
  for segment in "${backlog[@]}"; do
    touch "$SCRATCH/pg_wal/archive_status/$segment.ready"
  done
  case $1 in
    pgbackrest)
      repo="$WORK/pgbackrest-drain/repo"
      rm -rf "$repo" "$WORK/pgbackrest-drain/spool"
      mkdir -p "$repo" "$WORK/pgbackrest-drain/spool"
      chown -R postgres: "$WORK/pgbackrest-drain"
      pgbr pgbackrest-drain stanza-create --no-online >/dev/null
      command=(pgbackrest --config="$WORK/pgbackrest-drain.conf" --stanza=bench archive-push)
      ;;
    pgdbre)
      repo="$WORK/pgdbre-drain-repo"
      rm -rf "$repo"
      mkdir -p "$repo"
      command=("$WORK/bin/pgdbre" wal push --repo "$repo" --jobs "$JOBS")
      ;;
  esac
  chown -R postgres: "$SCRATCH" "$repo"
  cat "${backlog[@]/#/$SCRATCH/pg_wal/}" >/dev/null
  sync
  sleep 1
  local us stats calls mean failed stored
  us=$(as_postgres "$WORK/bin/drain" "$SCRATCH/pg_wal" "$log" "${command[@]}")
  stats=$(latency_stats "$log" 0)
  read -r calls _ _ _ mean failed <<<"$stats"
  [ "$calls" -ge "$SEGMENTS" ] || { echo "$1: $calls calls for $SEGMENTS segments" >&2; exit 1; }
  stored=$(find "$repo" -type f -name '0*' | wc -l)
  [ "$stored" -eq "$SEGMENTS" ] || { echo "$1 stored $stored segments, not $SEGMENTS" >&2; exit 1; }
  echo "$(echo "$us / 1000000" | bc -l | xargs printf '%.2f')" \
    "$(echo "$SEGMENTS * 1000000 / $us" | bc -l | xargs printf '%.1f')" \
    "$(echo "$wal_bytes / $us" | bc -l | xargs printf '%.1f')" "$mean" "$failed" \
    "$(du -sb "$repo" | cut -f1)"
}
# The faster of two drains per tool, in the order pgBackRest, pgdbre, pgdbre, pgBackRest: other
# work on the machine comes and goes, a tool's best drain is what it can do.
faster() { if [ "$(echo "${1%% *} <= ${2%% *}" | bc)" -eq 1 ]; then echo "$1"; else echo "$2"; fi; }
echo "draining $SEGMENTS segments ($((wal_bytes / 1000000)) MB) through each tool, twice ..." >&2
br_first=$(drain pgbackrest 1)
db_first=$(drain pgdbre 1)
db_second=$(drain pgdbre 2)
br_second=$(drain pgbackrest 2)
read -r br_drain_s br_seg_s br_mb_s br_call_ms br_drain_failed br_repo_bytes <<<"$(faster "$br_first" "$br_second")"
read -r db_drain_s db_seg_s db_mb_s db_call_ms db_drain_failed db_repo_bytes <<<"$(faster "$db_first" "$db_second")"
echo "drains (s): pgBackRest ${br_first%% *}, ${br_second%% *}; pgdbre ${db_first%% *}, ${db_second%% *}" >&2

mb=$((wal_bytes / 1000000))
row() { printf '  %-26s %-18s %-18s %s\n' "$@"; }
echo "pgbench scale $SCALE; zstd $LEVEL, $JOBS processes/jobs, local repositories; pgBackRest archive-async=y"
row "" pgdbre pgBackRest "ratio (pgdbre / pgBackRest)"
echo "under load: ${SECONDS_OF_LOAD} s of pgbench -N -c 8 each, archive_command timed"
row calls "$db_calls" "$br_calls"
row "latency p50" "$db_p50 ms" "$br_p50 ms" "$(ratio "$db_p50" "$br_p50")x time"
row "latency p95" "$db_p95 ms" "$br_p95 ms" "$(ratio "$db_p95" "$br_p95")x time"
row "latency max" "$db_max ms" "$br_max ms" "$(ratio "$db_max" "$br_max")x time"
row "segments archived" "$db_archived" "$br_archived"
row "failures" "$db_failed" "$br_failed"
row "max .ready backlog" "$db_backlog" "$br_backlog"
row "caught up after the load" "$db_catchup s" "$br_catchup s"
row "pgbench tps" "$db_tps" "$br_tps" "$(ratio "$db_tps" "$br_tps")x"
echo "drain of $SEGMENTS segments ($mb MB of WAL), one call per segment in name order, faster of 2"
row "time" "$db_drain_s s" "$br_drain_s s" "$(ratio "$db_drain_s" "$br_drain_s")x time"
row "throughput" "$db_seg_s seg/s" "$br_seg_s seg/s" "$(ratio "$db_seg_s" "$br_seg_s")x pgBackRest's throughput"
row "" "$db_mb_s MB/s" "$br_mb_s MB/s"
row "mean per call" "$db_call_ms ms" "$br_call_ms ms" "$(ratio "$db_call_ms" "$br_call_ms")x time"
row "failed calls" "$db_drain_failed" "$br_drain_failed"
row "repository size" "$((db_repo_bytes / 1000000)) MB" "$((br_repo_bytes / 1000000)) MB" "$(ratio "$db_repo_bytes" "$br_repo_bytes")x size"
[ "$db_failed_calls" -eq 0 ] || echo "note: $db_failed_calls pgdbre calls failed under load" >&2
[ "$br_failed_calls" -eq 0 ] || echo "note: $br_failed_calls pgBackRest calls failed under load" >&2

{
  echo "| $(date +%F) | $(uname -m), $(nproc) cores | \`bench/wal_push_vs_pgbackrest.sh $SECONDS_OF_LOAD $SEGMENTS $SCALE\` | load: $db_calls calls, p50/p95/max $db_p50/$db_p95/$db_max ms, $db_archived seg, $db_failed failed, backlog ≤$db_backlog, caught up ${db_catchup} s, $db_tps tps; drain: ${db_drain_s} s, $db_seg_s seg/s, $db_mb_s MB/s, $db_call_ms ms/call | load: $br_calls calls, p50/p95/max $br_p50/$br_p95/$br_max ms, $br_archived seg, $br_failed failed, backlog ≤$br_backlog, caught up ${br_catchup} s, $br_tps tps; drain: ${br_drain_s} s, $br_seg_s seg/s, $br_mb_s MB/s, $br_call_ms ms/call | latency p50 $(ratio "$db_p50" "$br_p50")x, p95 $(ratio "$db_p95" "$br_p95")x, max $(ratio "$db_max" "$br_max")x; drain $(ratio "$db_seg_s" "$br_seg_s")x pgBackRest's throughput |"
} >>bench/RESULTS.md
