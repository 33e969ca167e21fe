#!/usr/bin/env bash
# A few seconds of the benchmark harness, so it keeps working: framecast, then the floor
# (benches/floor) for a shorter while, 480p frames, 5 subscribers; then framecast for a second
# each with the generator's other modes: viewers at a scaled width (`--query width=160`), four
# streams watched on one connection per viewer (`--multiplex`) and on one per stream, and
# viewers reading MJPEG (`--output mjpeg`, `GET /mjpeg`); then a cluster of three framecast
# nodes over one nats-server (JetStream), frames published to node A and watched on node B.
# Fails if the load generator's checks fail (a sampled payload differs from the frame sent or a
# scaled one does not decode to its announced size, nothing was delivered, events out of order
# or of a stream not asked for, a part that breaks the multipart framing or has no mark) or a
# subscriber could not connect, or framecast scaled more frames than it published, or no MJPEG
# part was checked byte for byte, or in the cluster B did not get about one copy of each frame
# from NATS or C (no viewers) got any. Performance thresholds are not checked here: the full
# run is benches/run.sh (its cluster case: CASES=cluster).
#
#   bash benches/smoke.sh          # builds framecast, floor and loadgen (release) if needed
set -euo pipefail
cd "$(dirname "$0")/.."

command -v ffmpeg >/dev/null || {
  echo "smoke.sh needs ffmpeg (apt-get install ffmpeg)" >&2
  exit 1
}
nats_bin=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
# nats_start: nats-server for the cluster check.
. benches/nats.sh
[[ -x $nats_bin ]] || {
  echo "smoke.sh needs nats-server (apt-get install nats-server)" >&2
  exit 1
}
cargo build --release --quiet -p framecast -p floor -p loadgen

scratch=$(mktemp -d /tmp/framecast-smoke.XXXXXX)
server=""
cluster=()
stop() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
stop_cluster() {
  local pid
  for pid in "${cluster[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${cluster[@]}"; do wait "$pid" 2>/dev/null || true; done
  cluster=()
}
cleanup() {
  stop
  stop_cluster
  rm -rf "$scratch"
}
trap cleanup EXIT

ffmpeg -loglevel error -f lavfi -i testsrc2=size=640x480:rate=30 -frames:v 10 \
  -pix_fmt yuvj444p -qmin 1 -q:v 3 "$scratch/%03d.jpg"

subscribers=5
# Extra arguments for the generator, and the connections it should then hold.
extra=()
connections=$subscribers
line=""
# Runs the generator against server NAME started with the rest of the arguments for the given
# measured seconds; every 5th event is checked byte for byte.
check() { # name seconds command...
  local name=$1 seconds=$2 url="" i
  shift 2
  # The last check's file goes first: read before the new server's shell truncates it, it
  # gives an old address.
  rm -f "$scratch/$name.out"
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
    --sample-every 5 --label smoke "${extra[@]}")
  echo "$line"
  if [[ $line != *"\"connected\":$connections,"* ]]; then
    echo "smoke: not every subscriber of $name connected" >&2
    exit 1
  fi
  stop
}

framecast=(target/release/framecast --no-test-pattern --max-subscribers-per-ip 1000000)
check framecast 2 "${framecast[@]}"
check floor 1 target/release/floor

# Scaled variants: every viewer at width 160, the variant scaled once per frame, not per viewer.
subscribers=3 connections=3 extra=(--query width=160)
check framecast 1 "${framecast[@]}"
python3 - "$line" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
counters = r["server_counters"]
[variant] = counters["variants"]
problems = []
if r["event_dims"] != "160x120":
    problems.append(f"scaled events were {r['event_dims']}, not 160x120")
if not 0 < variant["scaled"] <= counters["published"]:
    problems.append(f"{variant['scaled']} frames scaled for {counters['published']} published")
if problems:
    sys.exit("smoke: " + "; ".join(problems))
EOF
# Four streams per viewer: on one connection each, then on one connection per stream.
subscribers=3 connections=3 extra=(--streams 4 --multiplex)
check framecast 1 "${framecast[@]}"
subscribers=2 connections=8 extra=(--streams 4)
check framecast 1 "${framecast[@]}"
# MJPEG: each part is known by the number the generator marked in its JPEG.
subscribers=3 connections=3 extra=(--output mjpeg)
check framecast 1 "${framecast[@]}"
python3 - "$line" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
if r["output"] != "mjpeg" or r["checked"] == 0 or r["latency_samples"] == 0:
    sys.exit(f"smoke: MJPEG: output {r['output']}, {r['checked']} parts checked, "
             f"{r['latency_samples']} latencies")
EOF

# A cluster: nats-server with JetStream on random loopback ports, nodes A, B and C joined to it;
# frames published to A, 3 viewers on B, none on C. B must get about one copy of each frame
# from NATS, C none (nats-server's /connz, read by the generator).
nats_start "$scratch/nats"
cluster+=("$nats_pid")
declare -A node_url node_pid
for node in A B C; do
  "${framecast[@]}" --max-frame-bytes 1000000 --nats "$nats_url" \
    --nats-node "$node" --bind 127.0.0.1:0 >"$scratch/$node.out" 2>"$scratch/$node.err" &
  cluster+=($!)
  node_pid[$node]=$!
  for ((i = 0; i < 100; i++)); do
    node_url[$node]=$(sed -n "s/^framecast listening on //p" "$scratch/$node.out" 2>/dev/null || true)
    [[ -n ${node_url[$node]} ]] && break
    sleep 0.05
  done
  if [[ -z ${node_url[$node]} ]]; then
    echo "framecast node $node did not start:" >&2
    cat "$scratch/$node.err" >&2
    exit 1
  fi
done
line=$(target/release/loadgen run --server framecast --url "${node_url[A]}" \
  --subscribe-url "${node_url[B]}" --server-pid "${node_pid[B]}" --watch "A=${node_pid[A]}" \
  --nats-monitor "$nats_monitor" --frames "$scratch" --fps 30 \
  --subscribers 3 --duration 1 --warmup 1 --sample-every 5 --label smoke --case cluster)
echo "$line"
stop_cluster
python3 - "$line" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
copies = {c["name"]: c["copies_to_client"] for c in r["nats"]["connections"]}
problems = []
if r["connected"] != 3:
    problems.append(f"{r['connected']} of 3 viewers on B connected")
if not 0.8 <= copies.get("framecast B", 0) <= 1.3:
    problems.append(f"B got {copies.get('framecast B')} copies of the frames from NATS, not ~1")
if copies.get("framecast C", 1) > 0.05:
    problems.append(f"C, without viewers, got {copies.get('framecast C')} copies of the frames")
if problems:
    sys.exit("smoke: cluster: " + "; ".join(problems))
EOF
echo "smoke: loadgen checks passed (framecast and floor; width, multiplexed and separate streams, MJPEG, a cluster over NATS)"
