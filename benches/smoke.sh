#!/usr/bin/env bash
# A few seconds of the benchmark harness, so it keeps working: framecast, then the floor
# (benches/floor) for a shorter while, 480p frames, 5 subscribers. Fails if the load generator's
# checks fail (a sampled payload differs from the frame sent, nothing was delivered, events out
# of order) or a subscriber could not connect. Performance thresholds are not checked here: the
# full run is benches/run.sh.
#
#   bash benches/smoke.sh          # builds framecast, floor and loadgen (release) if needed
set -euo pipefail
cd "$(dirname "$0")/.."

command -v ffmpeg >/dev/null || {
  echo "smoke.sh needs ffmpeg (apt-get install ffmpeg)" >&2
  exit 1
}
cargo build --release --quiet -p framecast -p floor -p loadgen

scratch=$(mktemp -d /tmp/framecast-smoke.XXXXXX)
server=""
stop() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
cleanup() {
  stop
  rm -rf "$scratch"
}
trap cleanup EXIT

ffmpeg -loglevel error -f lavfi -i testsrc2=size=640x480:rate=30 -frames:v 10 \
  -pix_fmt yuvj444p -qmin 1 -q:v 3 "$scratch/%03d.jpg"

subscribers=5
# Runs the generator against server NAME started with the rest of the arguments for the given
# measured seconds; every 5th event is checked byte for byte.
check() { # name seconds command...
  local name=$1 seconds=$2 url="" line i
  shift 2
  "$@" --bind 127.0.0.1:0 >"$scratch/$name.out" 2>"$scratch/$name.err" &
  server=$!
  for ((i = 0; i < 100; i++)); do
    # The file may not exist yet: the server's shell has not opened it.
    url=$(sed -n "s/^$name listening on //p" "$scratch/$name.out" 2>/dev/null || true)
    [[ -n $url ]] && break
    sleep 0.05
  done
  if [[ -z $url ]]; then
    echo "$name did not start:" >&2
    cat "$scratch/$name.err" >&2
    exit 1
  fi
  line=$(target/release/loadgen run --server "$name" --url "$url" --server-pid "$server" \
    --frames "$scratch" --fps 30 --subscribers "$subscribers" --duration "$seconds" --warmup 1 \
    --sample-every 5 --label smoke)
  echo "$line"
  if [[ $line != *"\"connected\":$subscribers,"* ]]; then
    echo "smoke: not every subscriber of $name connected" >&2
    exit 1
  fi
  stop
}

check framecast 2 target/release/framecast --no-test-pattern --max-subscribers-per-ip 1000000
check floor 1 target/release/floor
echo "smoke: loadgen checks passed (framecast and floor)"
