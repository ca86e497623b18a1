#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the build needs, then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo test --locked --all-targets "$@"
