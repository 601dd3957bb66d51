# Shared by the benchmark scripts, which source it after `cd` to the repository root with
# PGDBRE (the pgdbre binary) and DIR (the lab directory) set: the lab they start and the
# 10,000-table database they measure, so both benchmarks run against the same data.

# Starts a fresh one-node PostgreSQL 15 lab in $DIR (taking down one left there by an earlier
# run), sets ON_EXIT (a command that must take the lab down) as the EXIT trap, and exports the
# lab's environment with PGDATABASE=bench.
start_lab() {
  if [ -f "$DIR/lab.json" ]; then "$PGDBRE" lab down --dir "$DIR" >/dev/null 2>&1 || true; fi
  "$PGDBRE" lab up --replicas 0 --pg-version 15 --dir "$DIR" >/dev/null
  # shellcheck disable=SC2064  # expand the command now, as the caller gave it
  trap "$1" EXIT
  eval "$("$PGDBRE" lab env --dir "$DIR")"
  export PGDATABASE=bench
}

# Creates the database `bench` with TABLES tables t_1..t_TABLES, each with a primary key, one
# secondary index and some dead tuples (seeded by two sessions in parallel), then analyzes it.
seed_tables() {
  local tables=$1
  echo "seeding $tables tables (PK + index + dead tuples) ..." >&2
  psql -X -q -d postgres -c "CREATE DATABASE bench"
  local half=$((tables / 2))
  seed_range 1 "$half" & seed_range $((half + 1)) "$tables" & wait
  psql -X -q -c "VACUUM ANALYZE" >/dev/null
}

# Creates and fills tables t_FIRST..t_LAST of seed_tables, committing every 500 tables.
seed_range() {
  psql -X -q -v ON_ERROR_STOP=1 <<SQL
DO \$\$
BEGIN
  FOR i IN $1..$2 LOOP
    EXECUTE format('CREATE TABLE t_%s (id int PRIMARY KEY, v int, note text)', i);
    EXECUTE format('CREATE INDEX t_%s_v ON t_%s (v)', i, i);
    EXECUTE format('INSERT INTO t_%s SELECT g, g %% 7, md5(g::text) FROM generate_series(1, 40) g', i);
    EXECUTE format('DELETE FROM t_%s WHERE id %% 4 = 0', i);
    IF i % 500 = 0 THEN COMMIT; END IF;
  END LOOP;
END \$\$;
SQL
}
