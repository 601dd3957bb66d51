#!/usr/bin/env bash
# The whole test suite: installs what it needs, then formatting, lints, and every test against
# real PostgreSQL servers — the Debian PostgreSQL 15 and the PyPI PostgreSQL 18. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== tests on PostgreSQL 15"
PGDBRE_TEST_PG=15 cargo test --workspace --quiet
echo "== tests on PostgreSQL 18"
PGDBRE_TEST_PG=18 cargo test --workspace --quiet
