#!/usr/bin/env bash
# Runs every framecast check — formatting, lints, Rust unit and integration tests, the web
# package's unit tests and its browser tests — installing what they need on a fresh Debian
# machine first. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

# System packages: ffmpeg and curl are driven by the integration tests, chromium by the
# browser tests; PyJWT mints access tokens the way another implementation would; openssl
# makes the certificates of the HTTPS tests; Prometheus scrapes /metrics; nginx runs
# deploy/nginx.conf in front of framecast and systemd-analyze checks
# deploy/framecast.service (tests/it/proxy.rs, deploy.rs).
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
# /usr/sbin is not on every user's PATH: look for the file itself.
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/systemd-analyze ] || missing+=(systemd)
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs npm)
/usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null || missing+=(python3-jwt python3-cryptography)
# Prometheus and promtool read /metrics as a real scraper would.
[ -x /usr/bin/promtool ] || missing+=(prometheus)
# nats-server joins framecast nodes into a cluster (tests/it/cluster.rs), and HAProxy runs
# deploy/haproxy.cfg in front of one (tests/it/haproxy.rs).
[ -x /usr/sbin/nats-server ] || missing+=(nats-server)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# web/ needs a newer Node.js than Debian 12's: say so now, before minutes of Rust builds.
bash tests/node-check.sh
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test"
# Two cores: two test threads keep timing-sensitive tests honest.
cargo test --workspace -- --test-threads 2
step "release build, and a few seconds of the benchmark harness"
cargo build --release --workspace
bash benches/smoke.sh
step "attack suite, short form (the long form: cargo run --release -p attacks -- --long)"
# The binary the workspace build made: `cargo run -p attacks` alone would rebuild its
# dependencies with other features.
target/release/attacks

step "web: install, typecheck, unit tests, build, package, browser tests"
cd web
npm ci --no-audit --no-fund
npm run typecheck
npm test
npm run build
# Packs the library and builds a fresh Vite + React + TypeScript app against the tarball.
npm run test:package
FRAMECAST_BIN="$PWD/../target/release/framecast" npm run test:browser
