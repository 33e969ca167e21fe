#!/usr/bin/env bash
# Runs every framecast check — formatting, lints, Rust unit and integration tests, the web
# package's unit tests and its browser tests — installing what they need on a fresh Debian
# machine first. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

# System packages: ffmpeg and curl are driven by the integration tests, chromium by the
# browser tests.
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v curl >/dev/null || missing+=(curl)
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# web/ builds with Vite 8, which needs Node.js ^20.19.0 or >=22.12.0 (web/package.json "engines").
# apt-get gives Debian 13 a Node 20 that fits, but Debian 12 a Node 18 that fails deep inside
# `npm ci` or Vite: say so now, before minutes of Rust builds.
node_fits() {
  local major minor
  IFS=. read -r major minor _ <<<"$(node --version 2>/dev/null | tr -d v)"
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  ((major == 20 && minor >= 19)) || ((major == 22 && minor >= 12)) || ((major >= 23))
}
if ! node_fits; then
  cat >&2 <<EOF
tests/all.sh: Node.js $(node --version 2>/dev/null || echo "(none)") cannot build web/, which needs
Node.js 20.19 or newer within 20.x, or 22.12 or newer (Vite 8 and its React plugin).
- Debian 13 ships a Node.js 20 that fits: apt-get install nodejs npm.
- Debian 12 ships Node.js 18. Install a newer one another way: the nodejs package from a newer
  Debian release, an apt repository that packages current Node.js releases (NodeSource-style),
  or a version manager such as nvm or fnm. Then run tests/all.sh again.
EOF
  exit 1
fi
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

step "web: install, typecheck, unit tests, build, browser tests"
cd web
npm ci --no-audit --no-fund
npm run typecheck
npm test
npm run build
FRAMECAST_BIN="$PWD/../target/release/framecast" npm run test:browser
