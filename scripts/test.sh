#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the build needs, runs cargo test
# (unit tests, and the integration suite on SQLite), then the integration suite again on
# PostgreSQL, each test on a database of its own, when a server answers at
# LATCHKEY_TEST_DATABASE_URL (default: the local server's database `test`). It says plainly when
# it skipped that pass; with LATCHKEY_TEST_REQUIRE_POSTGRES=1 (CI) an unreachable server fails
# the run instead.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo test --locked --all-targets "$@"

url="${LATCHKEY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if ! pg_isready -q -t 5 -d "$url"; then
  if [ "${LATCHKEY_TEST_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "FAILED: PostgreSQL does not answer at $url, and this run requires the PostgreSQL pass" >&2
    exit 1
  fi
  echo "SKIPPED: the PostgreSQL pass of the suite (nothing answers at $url; set LATCHKEY_TEST_DATABASE_URL)" >&2
  exit 0
fi
# Databases left by an interrupted earlier run.
for db in $(psql "$url" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'lk\_test\_%'"); do
  psql "$url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
echo "The integration suite on PostgreSQL ($url)"
LATCHKEY_TEST_ENGINE=postgres LATCHKEY_TEST_DATABASE_URL="$url" cargo test --locked --test it "$@"
