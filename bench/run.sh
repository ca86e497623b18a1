#!/usr/bin/env bash
# Builds release, installs wrk if missing, runs the benchmark (bench/run.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk
fi
cargo build --release --quiet
exec python3 bench/run.py "$@"
