#!/usr/bin/env bash
# Packs the npm distribution for this machine from a local build, for installing from a
# checkout before (or without) a release: the main package `cdn-deploy` and this machine's
# platform package with BINARY in it, as tarballs in OUT.
#
#   npm-wrapper/scripts/pack-local.sh [BINARY] [OUT]
#       BINARY  default target/release/cargo-cdn-deploy (cargo build --release)
#       OUT     default target/npm-pack
#
# Then, in a web project: npm install --save-dev OUT/*.tgz
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${1:-target/release/cargo-cdn-deploy}
OUT=${2:-target/npm-pack}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
if [[ ! -x $BIN ]]; then
    echo "no binary at $BIN: run \`cargo build --release\` first, or pass the binary's path" >&2
    exit 1
fi
key=$(node -p "process.platform + '-' + process.arch")
rm -rf "$OUT"
mkdir -p "$OUT"
node npm-wrapper/scripts/make-platform-package.js "$key" "$BIN" "$OUT/package-$key" >/dev/null
(cd "$OUT/package-$key" && npm pack --silent --pack-destination "$OUT" >/dev/null)
(cd npm-wrapper/cdn-deploy && npm pack --silent --pack-destination "$OUT" >/dev/null)
rm -rf "$OUT/package-$key"
echo "Packed for $key into $OUT. In your web project:"
echo "  npm install --save-dev $OUT/*.tgz"
