#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine, if missing.
set -euo pipefail
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
# Browser tests drive Debian's Chromium (headless) with a virtual WebAuthn authenticator.
[ -x /usr/bin/chromium ] || need+=(chromium)
# npm fetches axe-core for the browser tests (below).
command -v npm >/dev/null || need+=(npm)
# The PostgreSQL pass of the suite checks the server with pg_isready and clears old test databases with psql.
command -v pg_isready >/dev/null && command -v psql >/dev/null || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
# Browser tests load axe-core (tests/axe) into each page they check for accessibility.
axe="$(dirname "$0")/../tests/axe"
[ -f "$axe/node_modules/axe-core/axe.min.js" ] || npm ci --prefix "$axe" --no-audit --no-fund --silent
