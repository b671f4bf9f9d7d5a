#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine as it is: installs what the
# suite needs when it is missing, then runs it (SQLite, a throwaway
# PostgreSQL 15 cluster the suite starts by itself, pages in headless
# Chromium, Node for the clients in tests/js, Python for the fuzzer in
# tests/fuzz). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x "${EXECSTORE_PG_BIN:-/usr/lib/postgresql/15/bin}/postgres" ] || missing+=(postgresql-15)
[ -x "${EXECSTORE_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages the suite needs)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# graphql-ws, one of the clients below, needs Node 20 or later; Debian 12's
# nodejs is 18. Then Node 20 comes from npm's `node` package, beside the
# suite's other npm packages, and goes first on the PATH.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  if [ ! -x tests/js/.node/node_modules/.bin/node ]; then
    echo "Node $(node --version) is older than the suite's clients need: installing Node 20 into tests/js/.node"
    npm install --prefix tests/js/.node --no-audit --no-fund --loglevel=error node@20
  fi
  PATH="$PWD/tests/js/.node/node_modules/.bin:$PATH"
  export PATH
fi

# Clients nobody here wrote (the GraphQL-over-HTTP audits, graphql-js),
# pinned by tests/js/package-lock.json.
if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
  echo "installing the suite's npm packages (tests/js)"
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
fi

# The fuzzer (schemathesis), pinned by tests/fuzz/requirements.txt, in a
# virtualenv of its own.
fuzz_env=tests/fuzz/.venv
if [ ! -x "$fuzz_env/bin/schemathesis" ] || [ tests/fuzz/requirements.txt -nt "$fuzz_env/bin/schemathesis" ]; then
  echo "installing the suite's fuzzer (tests/fuzz)"
  rm -rf "$fuzz_env"
  python3 -m venv "$fuzz_env"
  "$fuzz_env/bin/pip" install --quiet --disable-pip-version-check -r tests/fuzz/requirements.txt
  touch "$fuzz_env/bin/schemathesis"
fi

cargo test "$@"
