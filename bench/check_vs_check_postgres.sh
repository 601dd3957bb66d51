#!/usr/bin/env bash
# Benchmark: the whole `pgdbre check` catalog vs check_postgres's equivalent actions, side by side
# in one run, on a lab database with 10,000 tables (each with a primary key, one secondary index
# and some dead tuples). Prints both times and the ratio, and appends a row to bench/RESULTS.md.
#
# Usage: bench/check_vs_check_postgres.sh [TABLES] [RUNS]     (defaults 10000, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

TABLES=${1:-10000}
RUNS=${2:-5}
DIR=${PGDBRE_BENCH_DIR:-/tmp/pgdbre-bench}
PGDBRE=target/release/pgdbre

./scripts/setup.sh
cargo build --release --quiet
command -v check_postgres >/dev/null || { echo "check_postgres not found (Debian package check-postgres)" >&2; exit 1; }

start_lab '"$PGDBRE" lab down --dir "$DIR" >/dev/null 2>&1 || true'
seed_tables "$TABLES"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }

# pgdbre: the whole catalog, one process.
pgdbre_times=()
for _ in $(seq "$RUNS"); do
  t0=$(now); "$PGDBRE" check --output json >/tmp/pgdbre-bench-check.json || true; t1=$(now)
  pgdbre_times+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN {print a - b}')")
done
checks=$(grep -c '"id":' /tmp/pgdbre-bench-check.json || true)
echo "  slowest pgdbre checks (last run, ms; checks share 2 sessions, so times overlap):" >&2
python3 - /tmp/pgdbre-bench-check.json >&2 <<'PY' || true
import json, sys
results = json.load(open(sys.argv[1]))["targets"][0]["results"]
for r in sorted(results, key=lambda r: -r["duration_ms"])[:6]:
    print(f"    {r['duration_ms']:8.1f} {r['id']}")
PY

# check_postgres: 21 actions one after another, each with the thresholds it insists on.
CP=(check_postgres --host="$PGHOST" --port="$PGPORT" --dbuser=postgres --dbname=bench)
actions=(
  "autovac_freeze" "backends" "bloat" "connection" "database_size --warning=10GB --critical=20GB"
  "disabled_triggers" "hitratio" "index_size --warning=1GB --critical=2GB" "last_analyze" "last_vacuum"
  "locks" "prepared_txns" "query_time --warning=5min --critical=10min"
  "replication_slots --warning=100MB --critical=1GB" "sequence" "settings_checksum --critical=0"
  "table_size --warning=1GB --critical=2GB" "txn_idle --warning=5min --critical=10min"
  "txn_time --warning=5min --critical=10min" "txn_wraparound" "wal_files"
)
cp_times=()
for run in $(seq "$RUNS"); do
  t0=$(now)
  for a in "${actions[@]}"; do
    a0=$(now)
    # shellcheck disable=SC2086
    "${CP[@]}" --action=$a >/dev/null 2>&1 || true
    [ "$run" -eq 1 ] && printf '  check_postgres %-60s %6.3f s\n' "$a" "$(awk -v a="$(now)" -v b="$a0" 'BEGIN {print a - b}')" >&2
  done
  t1=$(now)
  cp_times+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN {print a - b}')")
done

p=$(printf '%s\n' "${pgdbre_times[@]}" | median)
c=$(printf '%s\n' "${cp_times[@]}" | median)
ratio=$(awk -v a="$c" -v b="$p" 'BEGIN {print a / b}')
printf 'tables=%s runs=%s\n' "$TABLES" "$RUNS"
printf 'pgdbre check (%s checks, one process):          median %.3f s\n' "$checks" "$p"
printf 'check_postgres (%s actions, one after another): median %.3f s\n' "${#actions[@]}" "$c"
printf 'ratio: pgdbre is %.1fx faster\n' "$ratio"

row=$(printf '| %s | %s, %s cores | `bench/check_vs_check_postgres.sh %s %s` | %.3f s | %.3f s | %.1fx |' \
  "$(date -u +%Y-%m-%d)" "$(uname -m)" "$(nproc)" "$TABLES" "$RUNS" "$p" "$c" "$ratio")
echo "$row" >> bench/RESULTS.md
