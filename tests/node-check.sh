#!/usr/bin/env bash
# Exits 1 with what to do when the Node.js on PATH cannot build web/. Run by tests/all.sh.
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
Node.js $(node --version 2>/dev/null || echo "(none)") cannot build web/, which needs
Node.js 20.19 or newer within 20.x, or 22.12 or newer (Vite 8 and its React plugin).
- Debian 13 ships a Node.js 20 that fits: apt-get install nodejs npm.
- Debian 12 ships Node.js 18. Install a newer one another way: the nodejs package from a newer
  Debian release, an apt repository that packages current Node.js releases (NodeSource-style),
  or a version manager such as nvm or fnm. Then run tests/all.sh again.
EOF
  exit 1
fi
