#!/usr/bin/env bash
# The full fan-out benchmark: framecast against the floor (benches/floor, about the least work a
# fan-out can do) and against nginx + Nchan, on the same frames, in the same run; framecast is
# measured twice, with subscribers reading SSE (`/events`) and reading MJPEG (`/mjpeg`).
#
#   bash benches/run.sh            # full run (~20 min), writes benches/RESULTS.md, results.png
#   bash benches/run.sh --quick    # a few minutes, coarse search, for trying the script out
#   # only the two framecast-only cases below (~2-3 min), report in benches/out/cases/
#   CASES=variants,multiplex bash benches/run.sh
#
#   # before/after: the same run against another framecast build, written elsewhere
#   FRAMECAST_BIN=/path/to/old/framecast RESULTS_DIR=/tmp/before bash benches/run.sh
#
# For each server and each resolution (480p, 720p) it finds the largest number of subscribers
# that still passes at 30 fps: >= 99 % of offered frames accepted, mean per-subscriber drops
# < 1 %, p99 publish->receive latency < 100 ms. `framecast-mjpeg` is framecast again, its
# subscribers on `GET /mjpeg` (`loadgen run --output mjpeg`: each JPEG published carries its
# number in a comment segment, read back from the start of each part), under the same pass
# criteria; it is its own row in the report. Servers run on CPU 0, the load generator on
# CPU 1; every server is started fresh for every step. The floor is a one-thread epoll writer
# that builds each frame's event once and writes it to every subscriber; framecast's event
# data delivered per second per server core is reported as a share of the floor's. It also
# measures latency with 10 subscribers (framecast over SSE and over MJPEG, Nchan), and for
# framecast and Nchan: server memory per idle subscriber at 10 000 connections (and for
# framecast what a `/metrics` scrape costs, with none and with all of them) and publishing
# with 1 000 stalled subscribers; and, as context only, loopback TCP throughput with iperf3
# (bulk streams, not the same work as fan-out).
# Those are the "main" case. Two more cases measure framecast alone, each its own table:
#   variants   scaled variants (`/events?width=N`): 720p published at 30 fps; server CPU per
#              published frame with 1 full-size viewer, then 1 and 500 viewers at width 320 and
#              at 160 (the difference to the first is the scaling), framecast's `scaled` counter
#              (`/streams`) against frames published, and the bytes of each event.
#   multiplex  16 streams at 10 fps each (480p), 50 and 200 viewers each watching all 16: on one
#              connection per viewer (`?stream=…&stream=…`) against one connection per viewer and
#              stream; server CPU per frame event delivered, delivery and drops. (10 fps, not 30:
#              200 × 16 × 30 fps of 480p would be ~5 GB/s, past what this box's server and
#              one-thread generator move.)
# One more runs only when asked for (CASES=cluster; it needs nats-server, Debian's package):
#   cluster    framecast nodes joined over NATS (`--nats`): one nats-server with JetStream and
#              nodes A, B and C, frames (480p, 30 fps) always published to A. Latency with 10
#              viewers on A alone (no --nats), on A in the cluster (its appends make a NATS
#              round trip) and on B (frames reach it through NATS); then the cost: publishing
#              with no viewers, alone and in the cluster (A's CPU per published frame), and 200
#              and 500 viewers fed by local uploads on a single node against fed over NATS on
#              B (the viewer node's CPU per delivered frame event, and A's and nats-server's
#              per frame). In each cluster step nats-server's /connz gives the bytes it sent
#              each node in the window, as copies of the frame bytes published: ~1 for a node
#              with viewers, ~0 for one without (C never has any). The node serving the
#              viewers runs on CPU 0; nats-server, the other nodes and the generator on CPU 1.
#
# Knobs (environment):
#   FRAMECAST_BIN     framecast binary to measure (default: build this checkout's, release)
#   RESULTS_DIR       where RESULTS.md, results.png, results.jsonl go (default: benches/)
#   SERVERS           servers to measure, in order (default: "framecast framecast-mjpeg floor
#                     nchan"; framecast-mjpeg is framecast with MJPEG subscribers)
#   LABELS            frame sizes (default: "480p 720p")
#   IPERF             0 to skip the iperf3 context line (default 1)
#   STEP_SECONDS (measured seconds per step, default 8), WARMUP_SECONDS (2), FPS (30),
#   START_SUBSCRIBERS (100), MAX_SUBSCRIBERS (12000), IDLE_SUBSCRIBERS (10000).
#   CASES             cases to run, comma- or space-separated (default "main variants multiplex",
#                     or just "main" when SERVERS leaves framecast out; "cluster" runs only
#                     when named); without main, SERVERS, LABELS and IPERF do not apply and
#                     the report goes to benches/out/cases/ unless RESULTS_DIR is set (the
#                     committed RESULTS.md keeps the full run).
#                     A framecast build without `?width=` or several `stream`s fails the extra
#                     cases: give it CASES=main.
#   VARIANT_LABEL (frames, default 720p), VARIANT_FPS (30), VARIANT_WIDTHS ("320 160"),
#   VARIANT_VIEWERS ("1 500"): the variants case.
#   MUX_LABEL (480p), MUX_FPS (10), MUX_STREAMS (16), MUX_VIEWERS ("50 200"): the multiplex case.
#   CLUSTER_LABEL (480p), CLUSTER_FPS (30), CLUSTER_LATENCY_VIEWERS (10), CLUSTER_VIEWERS
#   ("200 500"), NATS_SERVER (default: nats-server on PATH, else /usr/sbin/nats-server): the
#   cluster case, e.g. `CASES=cluster STEP_SECONDS=5 bash benches/run.sh` (~2 min).
# One step against the floor only, say:
#   SERVERS=floor LABELS=480p IPERF=0 START_SUBSCRIBERS=400 MAX_SUBSCRIBERS=400 \
#     RESULTS_DIR=/tmp/floor bash benches/run.sh --quick
# The MJPEG row alone, a short search:
#   SERVERS=framecast-mjpeg LABELS=480p IPERF=0 START_SUBSCRIBERS=100 MAX_SUBSCRIBERS=200 \
#     CASES=main RESULTS_DIR=/tmp/mjpeg bash benches/run.sh --quick
set -euo pipefail
# Paths given in the environment are relative to where the script was started.
[[ -z ${FRAMECAST_BIN:-} ]] || FRAMECAST_BIN=$(realpath -- "$FRAMECAST_BIN")
if [[ -n ${FRAMECAST_BIN:-} && ! -x $FRAMECAST_BIN ]]; then
  echo "FRAMECAST_BIN: $FRAMECAST_BIN is not executable" >&2
  exit 1
fi
[[ -z ${RESULTS_DIR:-} ]] || RESULTS_DIR=$(realpath -m -- "$RESULTS_DIR")
cd "$(dirname "$0")/.."
root=$PWD
benches=$root/benches

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
step_seconds=${STEP_SECONDS:-8}
warmup_seconds=${WARMUP_SECONDS:-2}
fps=${FPS:-30}
start_subscribers=${START_SUBSCRIBERS:-100}
max_subscribers=${MAX_SUBSCRIBERS:-12000}
idle_subscribers=${IDLE_SUBSCRIBERS:-10000}
read -ra servers <<<"${SERVERS:-framecast framecast-mjpeg floor nchan}"
read -ra labels <<<"${LABELS:-480p 720p}"
iperf=${IPERF:-1}
# The extra cases measure framecast only: by default they run when SERVERS includes it.
cases_default=main
for server in "${servers[@]}"; do
  [[ $server == framecast ]] && cases_default="main variants multiplex"
done
cases_asked=${CASES:-$cases_default}
read -ra cases <<<"${cases_asked//,/ }"
variant_label=${VARIANT_LABEL:-720p}
variant_fps=${VARIANT_FPS:-30}
read -ra variant_widths <<<"${VARIANT_WIDTHS:-320 160}"
read -ra variant_viewers <<<"${VARIANT_VIEWERS:-1 500}"
mux_label=${MUX_LABEL:-480p}
mux_fps=${MUX_FPS:-10}
mux_streams=${MUX_STREAMS:-16}
read -ra mux_viewers <<<"${MUX_VIEWERS:-50 200}"
cluster_label=${CLUSTER_LABEL:-480p}
cluster_fps=${CLUSTER_FPS:-30}
cluster_latency_viewers=${CLUSTER_LATENCY_VIEWERS:-10}
read -ra cluster_viewers <<<"${CLUSTER_VIEWERS:-200 500}"
for case in "${cases[@]}"; do
  case $case in
    main | variants | multiplex | cluster) ;;
    *) echo "CASES: unknown case $case (main, variants, multiplex, cluster)" >&2; exit 1 ;;
  esac
done
for label in "$variant_label" "$mux_label" "$cluster_label"; do
  case $label in
    480p | 720p) ;;
    *) echo "VARIANT_LABEL/MUX_LABEL/CLUSTER_LABEL: unknown frame size $label (480p, 720p)" >&2; exit 1 ;;
  esac
done
running() { # case: true if it is in CASES
  local case
  for case in "${cases[@]}"; do [[ $case == "$1" ]] && return 0; done
  return 1
}
if ! running main; then
  # The framecast-only cases: no other server, no iperf3.
  servers=()
  iperf=0
fi
for server in "${servers[@]}"; do
  case $server in
    framecast | framecast-mjpeg | floor | nchan) ;;
    *) echo "SERVERS: unknown server $server (framecast, framecast-mjpeg, floor, nchan)" >&2; exit 1 ;;
  esac
done
for label in "${labels[@]}"; do
  case $label in
    480p | 720p) ;;
    *) echo "LABELS: unknown frame size $label (480p, 720p)" >&2; exit 1 ;;
  esac
done
if running main; then
  out_dir=${RESULTS_DIR:-$benches}
else
  out_dir=${RESULTS_DIR:-$benches/out/cases}
fi
mkdir -p "$out_dir"
idle_settle=10
# Bisection stops when the bracket is within this fraction of the passing count.
precision=0.08
if ((quick)); then
  step_seconds=${STEP_SECONDS:-4}
  warmup_seconds=${WARMUP_SECONDS:-1}
  idle_subscribers=${IDLE_SUBSCRIBERS:-2000}
  idle_settle=3
  precision=0.25
fi

say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
measuring() { # server: true if it is in SERVERS
  local server
  for server in "${servers[@]}"; do [[ $server == "$1" ]] && return 0; done
  return 1
}

# ---- tools -------------------------------------------------------------------------------
nchan_module=/usr/lib/nginx/modules/ngx_nchan_module.so
missing=()
if measuring nchan; then
  command -v nginx >/dev/null || missing+=(nginx)
  [[ -f $nchan_module ]] || missing+=(libnginx-mod-nchan)
fi
if ((iperf)); then
  command -v iperf3 >/dev/null || missing+=(iperf3)
fi
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
if running main; then
  command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
fi
# Debian's nats-server is in /usr/sbin, not on every user's PATH.
nats_bin=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
# nats_start: nats-server for the cluster case.
. benches/nats.sh
if running cluster && [[ ! -x $nats_bin ]]; then
  missing+=(nats-server)
fi
command -v python3 >/dev/null || missing+=(python3)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if (($(nproc) < 2)); then
  echo "run.sh needs two CPUs (server on 0, load generator on 1)" >&2
  exit 1
fi
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < idle_subscribers + 100)); then
  idle_subscribers=$(($(ulimit -n) - 100))
  say "open-file limit $(ulimit -n): idle test lowered to $idle_subscribers subscribers"
fi
if ((max_subscribers > $(ulimit -n) - 100)); then
  max_subscribers=$(($(ulimit -n) - 100))
fi
if running cluster; then
  for n in "${cluster_viewers[@]}" "$cluster_latency_viewers"; do
    if ((n + 100 > $(ulimit -n))); then
      echo "CLUSTER_VIEWERS: $n viewers need more than $(ulimit -n) open files" >&2
      exit 1
    fi
  done
fi
if running multiplex; then
  for n in "${mux_viewers[@]}"; do
    if ((n * mux_streams + mux_streams + 100 > $(ulimit -n))); then
      echo "MUX_VIEWERS: $n viewers × $mux_streams streams need more than $(ulimit -n) open files" >&2
      exit 1
    fi
  done
fi

# ---- scratch space and cleanup -----------------------------------------------------------
scratch=$(mktemp -d /tmp/framecast-bench.XXXXXX)
started=()
cleanup() {
  local pid
  for pid in "${started[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${started[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build and frames --------------------------------------------------------------------
if [[ -n ${FRAMECAST_BIN:-} ]]; then
  framecast_bin=$FRAMECAST_BIN
  framecast_desc="binary $framecast_bin ($("$framecast_bin" --version 2>/dev/null || echo "no --version"))"
  say "building floor and loadgen (release); framecast is $framecast_bin"
  cargo build --release --quiet -p floor -p loadgen
else
  say "building framecast, floor and loadgen (release)"
  cargo build --release --quiet -p framecast -p floor -p loadgen
  framecast_bin=$root/target/release/framecast
  framecast_desc=""
fi
floor_bin=$root/target/release/floor
loadgen_bin=$root/target/release/loadgen

frames=$benches/out/frames
make_frames() { # name size extra-ffmpeg-args...
  local name=$1 size=$2
  shift 2
  if [[ ! -f $frames/$name/030.jpg ]]; then
    mkdir -p "$frames/$name"
    ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=30" -frames:v 30 \
      -pix_fmt yuvj444p -qmin 1 "$@" "$frames/$name/%03d.jpg"
  fi
}
# Quality chosen so the frames are about 40 KB and 140 KB.
make_frames 480p 640x480 -q:v 3
make_frames 720p 1280x720 -q:v 1

results=$benches/out/results.jsonl
started_at=$(date -u '+%Y-%m-%d %H:%M')
mkdir -p "$benches/out"
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
others=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 {printf "%s (%s%%) ", $2, $1}' | head -c 300)

# ---- servers -----------------------------------------------------------------------------
server_url=""
server_pids=()
server_main=""

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # port
  local i
  for ((i = 0; i < 100; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2
  return 1
}

# How the generator talks to a SERVERS entry: which server, and what its subscribers read.
loadgen_target() { # entry
  case $1 in
    framecast-mjpeg) echo "--server framecast --output mjpeg" ;;
    *) echo "--server $1" ;;
  esac
}

start_server() { # framecast|framecast-mjpeg|floor|nchan
  case $1 in
    framecast-mjpeg) start_server framecast ;;
    framecast | floor)
      # Both print "NAME listening on http://ADDR" on stdout once bound. The last step's file
      # goes first: read before the new server's shell truncates it, it gives an old address.
      rm -f "$scratch/$1.out"
      if [[ $1 == framecast ]]; then
        # Every simulated viewer comes from 127.0.0.1, so the per-client cap is lifted.
        taskset -c 0 "$framecast_bin" --bind 127.0.0.1:0 --no-test-pattern \
          --max-subscribers-per-ip 1000000 \
          >"$scratch/$1.out" 2>"$scratch/$1.err" &
      else
        taskset -c 0 "$floor_bin" --bind 127.0.0.1:0 >"$scratch/$1.out" 2>"$scratch/$1.err" &
      fi
      server_main=$!
      started+=("$server_main")
      local i
      server_url=""
      for ((i = 0; i < 100; i++)); do
        # The file may not exist yet: the server's shell has not opened it.
        server_url=$(sed -n "s/^$1 listening on //p" "$scratch/$1.out" 2>/dev/null || true)
        [[ -n $server_url ]] && break
        sleep 0.05
      done
      [[ -n $server_url ]] || { cat "$scratch/$1.err" >&2; return 1; }
      server_pids=("$server_main")
      ;;
    nchan)
      local port dir=$scratch/nginx
      port=$(free_port)
      rm -rf "$dir"
      mkdir -p "$dir"
      sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" "$benches/nchan.conf" >"$dir/nchan.conf"
      taskset -c 0 nginx -p "$dir" -c "$dir/nchan.conf" >"$dir/stdout" 2>&1 &
      server_main=$!
      started+=("$server_main")
      wait_for_port "$port" || { cat "$dir/error.log" "$dir/stdout" >&2; return 1; }
      server_url=http://127.0.0.1:$port
      local worker=""
      for ((i = 0; i < 100; i++)); do
        worker=$(pgrep -P "$server_main" | head -1 || true)
        [[ -n $worker ]] && break
        sleep 0.05
      done
      server_pids=("$server_main" $worker)
      ;;
  esac
}

stop_server() {
  kill -TERM "$server_main" 2>/dev/null || true
  wait "$server_main" 2>/dev/null || true
  server_main=""
}

pid_args() {
  local pid
  for pid in "${server_pids[@]}"; do printf -- '--server-pid %s ' "$pid"; done
}

# One measured step; appends its JSON line to $results and sets $passed to true or false.
passed=false
measure() { # server label subscribers [extra loadgen args...]
  local server=$1 label=$2 n=$3 line
  shift 3
  start_server "$server"
  # shellcheck disable=SC2046
  line=$(taskset -c 1 "$loadgen_bin" run $(loadgen_target "$server") --url "$server_url" \
    $(pid_args) --frames "$frames/$label" --fps "$fps" --subscribers "$n" \
    --duration "$step_seconds" --warmup "$warmup_seconds" --label "$label" "$@" \
    2>>"$scratch/loadgen.log") || true
  stop_server
  passed=false
  if [[ -z $line ]]; then
    say "  $server $label n=$n: loadgen failed: $(tail -1 "$scratch/loadgen.log")"
    return
  fi
  echo "$line" >>"$results"
  python3 - "$line" <<'EOF' >&2
import json, sys
r = json.loads(sys.argv[1])
server = r['server'] + ('-mjpeg' if r.get('output') == 'mjpeg' else '')
print(f"  {server:15} {r['label']:4} n={r['subscribers']:<6} accepted {r['accept_ratio']*100:5.1f}%"
      f"  drops {r['drop_ratio']['mean']*100:5.2f}%  p99 {r['latency_ms']['p99']:7.1f} ms"
      f"  server cpu {r['server_cpu_share']*100:3.0f}%  loadgen cpu {r['loadgen_cpu_share']*100:3.0f}%"
      f"  {'PASS' if r['pass'] else 'fail'}")
EOF
  passed=$(python3 -c 'import json,sys; print(str(json.loads(sys.argv[1])["pass"]).lower())' "$line")
}

# Doubles the subscriber count until a step fails, then bisects; sets $found to the largest
# passing count (0 if none passed).
found=0
search() { # server label
  local server=$1 label=$2 lo=0 hi=0 n=$start_subscribers
  say "searching $server $label"
  while ((n <= max_subscribers)); do
    measure "$server" "$label" "$n"
    if [[ $passed == true ]]; then
      lo=$n
      n=$((n * 2))
    else
      hi=$n
      break
    fi
  done
  if ((hi == 0)); then
    hi=$((max_subscribers + 1))
    if ((lo < max_subscribers)); then
      measure "$server" "$label" "$max_subscribers"
      if [[ $passed == true ]]; then lo=$max_subscribers; else hi=$max_subscribers; fi
    fi
  fi
  if ((lo == 0)); then
    # Even the first step failed: walk down.
    n=$((hi / 2))
    while ((n >= 1)); do
      measure "$server" "$label" "$n"
      if [[ $passed == true ]]; then lo=$n; break; fi
      hi=$n
      n=$((n / 2))
    done
  fi
  while ((lo > 0 && hi <= max_subscribers)) &&
    python3 -c "import sys; sys.exit(0 if ($hi - $lo) > max(2, $precision * $lo) else 1)"; do
    n=$(((lo + hi) / 2))
    measure "$server" "$label" "$n"
    if [[ $passed == true ]]; then lo=$n; else hi=$n; fi
  done
  found=$lo
}

# One step of the variants or multiplex case, framecast only, at the case's own frames and
# rate; appends its JSON line (tagged with the case) to $results.
measure_case() { # case label fps viewers [extra loadgen args...]
  local case=$1 label=$2 step_fps=$3 n=$4 line
  shift 4
  start_server framecast
  # shellcheck disable=SC2046
  line=$(taskset -c 1 "$loadgen_bin" run --server framecast --url "$server_url" \
    $(pid_args) --frames "$frames/$label" --fps "$step_fps" --subscribers "$n" \
    --duration "$step_seconds" --warmup "$warmup_seconds" --label "$label" --case "$case" "$@" \
    2>>"$scratch/loadgen.log") || true
  stop_server
  if [[ -z $line ]]; then
    say "  $case $label n=$n $*: loadgen failed: $(tail -1 "$scratch/loadgen.log")"
    return
  fi
  echo "$line" >>"$results"
  python3 - "$line" <<'EOF' >&2
import json, sys
r = json.loads(sys.argv[1])
how = r["query"] or "full size"
if r["streams"] > 1:
    how = (f"{r['streams']} streams on "
           f"{'1 connection' if r['multiplex'] else str(r['streams']) + ' connections'}")
counters = r.get("server_counters") or {}
scaled = "".join(f"  scaled {v['scaled']}/{counters['published']}"
                 for v in counters.get("variants", []))
problems = "; ".join(r["integrity"])
print(f"  {r['case']:9} {r['label']:4} n={r['subscribers']:<4} {how:27} "
      f"accepted {r['accept_ratio']*100:5.1f}%  drops {r['drop_ratio']['mean']*100:5.2f}%  "
      f"p99 {r['latency_ms']['p99']:6.1f} ms  server {r['server_cpu_ms_per_frame']:6.2f} ms/frame "
      f"{r['server_cpu_us_per_event']:6.1f} us/event  {r['event_bytes'] / 1e3:6.1f} KB/event"
      f"{scaled}  loadgen cpu {r['loadgen_cpu_share']*100:3.0f}%"
      f"{'  INTEGRITY ' + problems if problems else ''}")
EOF
}

# ---- the cluster case: one nats-server and framecast nodes joined by --nats -------------
nats_pid=""
nats_url=""
nats_monitor=""
cluster_pids=()
declare -A node_url node_pid

# Starts nats-server on CPU (benches/nats.sh), remembered for stopping.
start_nats() { # cpu
  nats_start "$scratch/nats" taskset -c "$1" || return 1
  started+=("$nats_pid")
  cluster_pids+=("$nats_pid")
}

# Starts framecast node NAME on CPU; with join=1 it joins the cluster as NAME.
start_node() { # name cpu join
  local name=$1 cpu=$2 join=$3 out=$scratch/node-$1.out i url=""
  local extra=()
  if ((join)); then extra=(--nats "$nats_url" --nats-node "$name"); fi
  rm -f "$out"
  # --max-frame-bytes: a frame and its headers must fit nats-server's default max_payload
  # (1 MB); single nodes get the same limit, so that only --nats differs.
  taskset -c "$cpu" "$framecast_bin" --bind 127.0.0.1:0 --no-test-pattern \
    --max-subscribers-per-ip 1000000 --max-frame-bytes 1000000 "${extra[@]}" \
    >"$out" 2>"$scratch/node-$name.err" &
  node_pid[$name]=$!
  started+=("${node_pid[$name]}")
  cluster_pids+=("${node_pid[$name]}")
  for ((i = 0; i < 200; i++)); do
    url=$(sed -n "s/^framecast listening on //p" "$out" 2>/dev/null || true)
    [[ -n $url ]] && break
    sleep 0.05
  done
  [[ -n $url ]] || { cat "$scratch/node-$name.err" >&2; return 1; }
  node_url[$name]=$url
}

stop_cluster() {
  local pid
  for pid in "${cluster_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${cluster_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  cluster_pids=()
  node_url=()
  node_pid=()
}

# One step of the cluster case; frames are always published to node A. `single`: node A
# alone, without --nats. `cluster`: nats-server and nodes A, B and C joined by --nats. The
# viewers watch on node VIEWERS_ON (A, B, or - for none). The node serving the viewers runs on
# CPU 0; nats-server, every other node and the generator on CPU 1. Every process is started
# afresh. Appends the JSON line, tagged with the step, setup and placement, to $results.
measure_cluster() { # step single|cluster viewers_on viewers [extra loadgen args...]
  local step=$1 setup=$2 on=$3 n=$4 line name cpu join=0 nodes=(A) pinning="" watch=()
  shift 4
  if [[ $setup == cluster ]]; then
    nodes=(A B C)
    join=1
    start_nats 1 || { say "  cluster $step: nats-server did not start"; stop_cluster; return; }
    pinning="nats-server:1"
  fi
  for name in "${nodes[@]}"; do
    cpu=1
    [[ $name == "$on" ]] && cpu=0
    start_node "$name" "$cpu" "$join" ||
      { say "  cluster $step: node $name did not start"; stop_cluster; return; }
    pinning+="${pinning:+ }$name:$cpu"
    watch+=(--watch "$name=${node_pid[$name]}")
  done
  if [[ $setup == cluster ]]; then
    watch+=(--watch "nats-server=$nats_pid" --nats-monitor "$nats_monitor")
  fi
  local viewer=A
  [[ $on != - ]] && viewer=$on
  line=$(taskset -c 1 "$loadgen_bin" run --server framecast --url "${node_url[A]}" \
    --subscribe-url "${node_url[$viewer]}" --server-pid "${node_pid[$viewer]}" "${watch[@]}" \
    --frames "$frames/$cluster_label" --fps "$cluster_fps" --subscribers "$n" \
    --duration "$step_seconds" --warmup "$warmup_seconds" --label "$cluster_label" \
    --case cluster "$@" 2>>"$scratch/loadgen.log") || true
  stop_cluster
  if [[ -z $line ]]; then
    say "  cluster $step $setup n=$n on $on: loadgen failed: $(tail -1 "$scratch/loadgen.log")"
    return
  fi
  line=$(python3 - "$line" "$step" "$setup" "$on" "$pinning" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
r.update(step=sys.argv[2], setup=sys.argv[3], viewers_on=sys.argv[4], publish_node="A",
         cpus=dict(p.split(":") for p in sys.argv[5].split()))
print(json.dumps(r))
PY
  )
  echo "$line" >>"$results"
  python3 - "$line" <<'PY' >&2
import json, sys
r = json.loads(sys.argv[1])
cpu = {p["name"]: p for p in r.get("processes") or []}
nats = {c["name"].removeprefix("framecast "): c["copies_to_client"]
        for c in (r.get("nats") or {}).get("connections", [])}
viewers = f"on {r['viewers_on']}" if r["subscribers"] else "(no viewers)"
text = (f"  {r['step']:7} {r['setup']:7} n={r['subscribers']:<4} {viewers:12} "
        f"accepted {r['accept_ratio']*100:5.1f}%  drops {r['drop_ratio']['mean']*100:5.2f}%  "
        f"p50 {r['latency_ms']['p50']:6.2f} p99 {r['latency_ms']['p99']:6.2f} ms  ")
if r["subscribers"]:
    text += f"viewer node {r['server_cpu_us_per_event']:5.1f} us/event  "
text += f"A {cpu['A']['cpu_ms_per_frame']:.3f} ms/frame"
if "nats-server" in cpu:
    text += f"  nats-server {cpu['nats-server']['cpu_ms_per_frame']:.3f} ms/frame"
text += f"  loadgen cpu {r['loadgen_cpu_share']*100:3.0f}%"
if nats:
    text += "  copies to " + " ".join(f"{k} {v:.3f}" for k, v in nats.items())
if r["integrity"]:
    text += "  INTEGRITY " + "; ".join(r["integrity"])
print(text)
PY
}

# ---- the runs ----------------------------------------------------------------------------
say "results go to $results (load average before: $load_before)"
declare -A best
for label in "${labels[@]}"; do
  for server in "${servers[@]}"; do
    search "$server" "$label"
    best[$server.$label]=$found
    say "$server $label: largest passing subscriber count ${best[$server.$label]}"
    echo "{\"mode\":\"best\",\"server\":\"$server\",\"label\":\"$label\",\"subscribers\":${best[$server.$label]}}" >>"$results"
  done
done

# The floor is a reference for throughput only: these are framecast's and Nchan's (latency
# over MJPEG too; stalled and idle subscribers over SSE only).
compared=()
for server in framecast nchan; do
  if measuring "$server"; then compared+=("$server"); fi
done
latency_servers=()
for server in framecast framecast-mjpeg nchan; do
  if measuring "$server"; then latency_servers+=("$server"); fi
done

if ((${#latency_servers[@]})); then
  say "latency with 10 subscribers"
  for server in "${latency_servers[@]}"; do
    measure "$server" 480p 10 --sample-every 10
  done
fi

if ((${#compared[@]})); then
  say "publishing with 1000 stalled subscribers next to 200 healthy ones"
  for server in "${compared[@]}"; do
    measure "$server" 480p 200 --stalled 1000
  done

  say "idle subscribers: $idle_subscribers"
  for server in "${compared[@]}"; do
    start_server "$server"
    # framecast's /metrics is scraped too, before and while they are held: what a scrape
    # costs should not grow with the subscribers.
    scrape=()
    [[ $server == framecast ]] && scrape=(--scrape /metrics --scrapes "$((quick ? 50 : 200))")
    # shellcheck disable=SC2046
    taskset -c 1 "$loadgen_bin" idle --server "$server" --url "$server_url" $(pid_args) \
      --subscribers "$idle_subscribers" --settle "$idle_settle" "${scrape[@]}" \
      >>"$results" 2>>"$scratch/loadgen.log" || say "  idle $server: not every subscriber held"
    tail -"$((3 + ${#scrape[@]} / 2))" "$scratch/loadgen.log" >&2
    stop_server
  done
fi

if ((iperf)); then
  # Context only: bulk streams through a few deep buffers are not the work fan-out does.
  say "loopback TCP, for context (iperf3, 8 streams: sender on CPU 0 like the servers, receiver on CPU 1)"
  iperf_seconds=$((quick ? 3 : 8))
  streams=8
  iperf_port=$(free_port)
  taskset -c 1 iperf3 -s -p "$iperf_port" >/dev/null 2>&1 &
  iperf_server=$!
  started+=("$iperf_server")
  # No probing of the port: iperf3 takes any connection as a test client.
  for ((try = 0; try < 20; try++)); do
    sleep 0.2
    if taskset -c 0 iperf3 -c 127.0.0.1 -p "$iperf_port" -t "$iperf_seconds" -P "$streams" -J \
      >"$scratch/iperf.json" 2>/dev/null; then
      break
    fi
  done
  kill "$iperf_server" 2>/dev/null || true
  wait "$iperf_server" 2>/dev/null || true
  python3 - "$scratch/iperf.json" "$streams" >>"$results" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))
end = run["end"]
print(json.dumps({
    "mode": "iperf3",
    "streams": int(sys.argv[2]),
    "bytes_per_s": end["sum_received"]["bits_per_second"] / 8,
    "sender_cpu_share": end["cpu_utilization_percent"]["host_total"] / 100,
    "receiver_cpu_share": end["cpu_utilization_percent"]["remote_total"] / 100,
}))
EOF
fi

if running variants; then
  say "scaled variants: framecast, $variant_label at $variant_fps fps, 1 full-size viewer, then widths ${variant_widths[*]}"
  measure_case variants "$variant_label" "$variant_fps" 1
  for width in "${variant_widths[@]}"; do
    for n in "${variant_viewers[@]}"; do
      measure_case variants "$variant_label" "$variant_fps" "$n" --query "width=$width"
    done
  done
fi

if running multiplex; then
  say "multiplexing: framecast, $mux_streams streams of $mux_label at $mux_fps fps, ${mux_viewers[*]} viewers"
  for n in "${mux_viewers[@]}"; do
    measure_case multiplex "$mux_label" "$mux_fps" "$n" --streams "$mux_streams"
    measure_case multiplex "$mux_label" "$mux_fps" "$n" --streams "$mux_streams" --multiplex
  done
fi

if running cluster; then
  say "cluster: framecast nodes over NATS ($nats_bin), $cluster_label at $cluster_fps fps, published to node A"
  say " latency, $cluster_latency_viewers viewers: A alone, then A in a cluster, watched on A and on B"
  measure_cluster latency single A "$cluster_latency_viewers" --sample-every 10
  measure_cluster latency cluster A "$cluster_latency_viewers" --sample-every 10
  measure_cluster latency cluster B "$cluster_latency_viewers" --sample-every 10
  say " cost: publishing with no viewers, then ${cluster_viewers[*]} viewers fed locally and over NATS"
  measure_cluster cost single - 0
  measure_cluster cost cluster - 0
  for n in "${cluster_viewers[@]}"; do
    measure_cluster cost single A "$n"
    measure_cluster cost cluster B "$n"
  done
fi

# ---- report ------------------------------------------------------------------------------
say "writing $out_dir/RESULTS.md and results.png"
cp "$results" "$out_dir/results.jsonl"
invocation="bash benches/run.sh"
if ((quick)); then invocation+=" --quick"; fi
for knob in CLUSTER_VIEWERS CLUSTER_LATENCY_VIEWERS CLUSTER_FPS CLUSTER_LABEL NATS_SERVER MUX_VIEWERS MUX_STREAMS MUX_FPS MUX_LABEL VARIANT_VIEWERS VARIANT_WIDTHS \
  VARIANT_FPS VARIANT_LABEL CASES IPERF IDLE_SUBSCRIBERS MAX_SUBSCRIBERS START_SUBSCRIBERS FPS \
  WARMUP_SECONDS STEP_SECONDS LABELS SERVERS FRAMECAST_BIN; do
  if [[ -n ${!knob:-} ]]; then invocation="$knob='${!knob}' $invocation"; fi
done
settings="step=${step_seconds}s warmup=${warmup_seconds}s"
if running main; then
  settings="fps=$fps $settings precision=$precision idle=$idle_subscribers"
fi
if running variants; then
  settings+="; variants: $variant_label at $variant_fps fps, widths ${variant_widths[*]}, viewers ${variant_viewers[*]}"
fi
if running cluster; then
  settings+="; cluster: $cluster_label at $cluster_fps fps, $cluster_latency_viewers viewers for latency, ${cluster_viewers[*]} for cost, $("$nats_bin" --version 2>/dev/null || echo nats-server)"
fi
if running multiplex; then
  settings+="; multiplex: $mux_streams streams of $mux_label at $mux_fps fps, viewers ${mux_viewers[*]}"
fi
python3 "$benches/report.py" "$out_dir/results.jsonl" \
  --out "$out_dir/RESULTS.md" --plot "$out_dir/results.png" \
  --load-before "$load_before" --others "$others" --invocation "$invocation" \
  --date "$started_at" --framecast "$framecast_desc" \
  --settings "$settings"
say "done"
