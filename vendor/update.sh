#!/usr/bin/env bash
# Re-vendors async-graphql from crates.io and applies our patch:
#   vendor/update.sh            # 7.2.1, the version Cargo.toml pins
#   vendor/update.sh 7.3.0      # a newer release: re-check the patch applies
# The copy is the published crate's src/, licenses and README, and its
# Cargo.toml less the test/bench/example targets and dev-dependencies (their
# files are left out; a patched dependency never builds them).
set -euo pipefail
version="${1:-7.2.1}"
here="$(cd "$(dirname "$0")" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src"
echo 'fn main() {}' > "$scratch/src/main.rs"
cat > "$scratch/Cargo.toml" <<EOF
[package]
name = "fetch-async-graphql"
version = "0.0.0"
edition = "2021"
[dependencies]
async-graphql = "=$version"
EOF
cargo fetch --manifest-path "$scratch/Cargo.toml" >/dev/null
published="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"async-graphql-$version" | head -1)"
target="$here/async-graphql"
rm -rf "$target"
mkdir -p "$target"
cp -r "$published/src" "$published/LICENSE-APACHE" "$published/LICENSE-MIT" "$published/README.md" "$target/"
awk '/^\[\[(test|bench|example)\]\]$/ || /^\[dev-dependencies/ { skip = 1; next }
     skip && /^$/ { skip = 0; next }
     !skip' "$published/Cargo.toml" > "$target/Cargo.toml"
patch --quiet -d "$target" -p1 < "$here/async-graphql.patch"
echo "vendor/async-graphql: async-graphql $version with async-graphql.patch applied"
