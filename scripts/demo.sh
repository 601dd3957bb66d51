#!/usr/bin/env bash
# The quick start: installs what pgdbre needs, builds it, starts a lab cluster (primary + 2
# streaming replicas), puts pgbench load and a dozen real problems on it, and runs `pgdbre check`.
# The lab stays up afterwards so you can explore; the script prints how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${PGDBRE_LAB_DIR:-/tmp/pgdbre-lab}
PGDBRE=target/release/pgdbre

./scripts/setup.sh
echo "== building pgdbre (release)"
cargo build --release --quiet

if [ -f "$DIR/lab.json" ]; then
  echo "== stopping the previous lab in $DIR"
  "$PGDBRE" lab down --dir "$DIR"
fi
echo "== pgdbre lab up --replicas 2 --dir $DIR"
"$PGDBRE" lab up --replicas 2 --dir "$DIR"
eval "$("$PGDBRE" lab env --dir "$DIR")"

echo "== realistic load: pgbench scale 5, 8 s of TPC-B-like traffic"
pgbench -i -s 5 -q >/dev/null 2>&1
pgbench -c 4 -j 2 -T 8 -n >/dev/null 2>&1

echo "== seeding problems"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
-- A forgotten two-phase commit: holds locks and the xmin horizon until someone resolves it.
BEGIN; UPDATE pgbench_tellers SET tbalance = tbalance WHERE tid = 1; PREPARE TRANSACTION 'forgotten_2pc';
-- A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid index behind.
CREATE TABLE customers (id bigserial PRIMARY KEY, email text);
INSERT INTO customers (email) SELECT 'user' || (g % 500) || '@example.com' FROM generate_series(1, 1000) g;
-- Two indexes on the same column: every write pays twice.
CREATE INDEX accounts_bid ON pgbench_accounts (bid);
CREATE INDEX accounts_bid_again ON pgbench_accounts (bid);
-- A serial key nearly out of values, and an int4 column fed by a bigint sequence.
CREATE TABLE orders (id serial PRIMARY KEY, placed_at timestamptz DEFAULT now());
SELECT setval('orders_id_seq', 2000000000);
CREATE SEQUENCE invoice_seq;
CREATE TABLE invoices (id int4 PRIMARY KEY DEFAULT nextval('invoice_seq'), amount numeric);
SELECT setval('invoice_seq', 1900000000);
-- A hot table with autovacuum switched off and most of its rows deleted.
CREATE TABLE events (id bigserial PRIMARY KEY, payload text) WITH (autovacuum_enabled = false);
INSERT INTO events (payload) SELECT md5(g::text) FROM generate_series(1, 200000) g;
DELETE FROM events WHERE id % 4 <> 0;
-- A replication slot for a standby that no longer exists: WAL piles up behind it.
SELECT pg_create_physical_replication_slot('old_standby', true);
-- Posture: everyone may create objects in public; two extra superusers.
GRANT CREATE ON SCHEMA public TO PUBLIC;
CREATE ROLE app_admin SUPERUSER LOGIN;
CREATE ROLE reporting SUPERUSER LOGIN;
SQL
psql -X -q -c "CREATE UNIQUE INDEX CONCURRENTLY customers_email_key ON customers (email)" 2>/dev/null || true
psql -X -q -c "ANALYZE" >/dev/null

# An application session left idle in a transaction, and a second session queued behind its lock.
# Each runs in its own process group so the end of the demo can stop all of it.
setsid bash -c 'printf "BEGIN;\nUPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1;\n"; sleep 3600' \
  | PGAPPNAME=billing-worker setsid psql -X -q >/dev/null 2>&1 &
holder=$!
setsid bash -c 'sleep 1; printf "UPDATE pgbench_branches SET bbalance = 0 WHERE bid = 1;\n"; sleep 3600' \
  | PGAPPNAME=report-job setsid psql -X -q >/dev/null 2>&1 &
waiter=$!
cleanup() { pkill -g "$(ps -o pgid= -p $holder | tr -d ' ')" 2>/dev/null || true; pkill -g "$(ps -o pgid= -p $waiter | tr -d ' ')" 2>/dev/null || true; kill $holder $waiter 2>/dev/null || true; }
trap cleanup EXIT
# Let the idle transaction and the lock wait age past the demo thresholds (examples/thresholds-demo.yaml).
sleep 6

echo "== pgdbre check --thresholds examples/thresholds-demo.yaml"
echo
status=0
"$PGDBRE" check --thresholds examples/thresholds-demo.yaml || status=$?
echo "(exit status $status: 0 ok, 1 warning, 2 critical, 3 unknown — the Nagios convention)"
echo
echo "The lab is still running. Try:"
echo "  eval \"\$($PGDBRE lab env --dir $DIR)\"; $PGDBRE check --output json | less"
echo "  $PGDBRE check --explain xmin-horizon"
echo "  $PGDBRE lab status --dir $DIR"
echo "Stop it with: $PGDBRE lab down --dir $DIR"
