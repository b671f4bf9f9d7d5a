#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine as it is: installs what the
# suite needs when it is missing, then runs it (SQLite, a throwaway
# PostgreSQL 15 cluster the suite starts by itself, pages in headless
# Chromium, Node for the clients in tests/js). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x "${EXECSTORE_PG_BIN:-/usr/lib/postgresql/15/bin}/postgres" ] || missing+=(postgresql-15)
[ -x "${EXECSTORE_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages the suite needs)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Clients nobody here wrote (the GraphQL-over-HTTP audits, graphql-js),
# pinned by tests/js/package-lock.json.
if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
  echo "installing the suite's npm packages (tests/js)"
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
fi

cargo test "$@"
