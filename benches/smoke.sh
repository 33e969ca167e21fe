#!/usr/bin/env bash
# A few seconds of the benchmark harness, so it keeps working: framecast only, 480p frames,
# 5 subscribers. Fails if the load generator's checks fail (a sampled payload differs from the
# frame sent, nothing was delivered, events out of order) or a subscriber could not connect.
# Performance thresholds are not checked here: the full run is benches/run.sh.
#
#   bash benches/smoke.sh          # builds framecast and loadgen (release) if needed
set -euo pipefail
cd "$(dirname "$0")/.."

command -v ffmpeg >/dev/null || {
  echo "smoke.sh needs ffmpeg (apt-get install ffmpeg)" >&2
  exit 1
}
cargo build --release --quiet -p framecast -p loadgen

scratch=$(mktemp -d /tmp/framecast-smoke.XXXXXX)
server=""
cleanup() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

ffmpeg -loglevel error -f lavfi -i testsrc2=size=640x480:rate=30 -frames:v 10 \
  -pix_fmt yuvj444p -qmin 1 -q:v 3 "$scratch/%03d.jpg"

target/release/framecast --bind 127.0.0.1:0 --no-test-pattern >"$scratch/out" 2>"$scratch/err" &
server=$!
url=""
for ((i = 0; i < 100; i++)); do
  url=$(sed -n 's/^framecast listening on //p' "$scratch/out")
  [[ -n $url ]] && break
  sleep 0.05
done
if [[ -z $url ]]; then
  echo "framecast did not start:" >&2
  cat "$scratch/err" >&2
  exit 1
fi

subscribers=5
# Every 5th event is checked byte for byte: ~5 subscribers x 60 events / 5 = ~60 checks.
line=$(target/release/loadgen run --server framecast --url "$url" --server-pid "$server" \
  --frames "$scratch" --fps 30 --subscribers "$subscribers" --duration 2 --warmup 1 \
  --sample-every 5 --label smoke)
echo "$line"
if [[ $line != *"\"connected\":$subscribers,"* ]]; then
  echo "smoke: not every subscriber connected" >&2
  exit 1
fi
echo "smoke: loadgen checks passed"
