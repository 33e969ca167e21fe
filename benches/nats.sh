# Sourced by run.sh and smoke.sh: starts nats-server for a cluster of framecast nodes.
#
# nats_start DIR [PREFIX...] starts nats-server with JetStream (its store in DIR; framecast
# keeps its frame log in memory anyway) on random loopback ports, the HTTP monitoring port
# (/connz) included, run through PREFIX (e.g. `taskset -c 1`). It sets nats_pid, nats_url and
# nats_monitor, or prints the server's log and returns 1.
nats_start() {
  local dir=$1 i port monitor
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  printf 'listen: 127.0.0.1:-1\nhttp: 127.0.0.1:-1\njetstream { store_dir: "%s" }\n' \
    "$dir/js" >"$dir/nats.conf"
  "$@" "${nats_bin:-/usr/sbin/nats-server}" -c "$dir/nats.conf" >"$dir/log" 2>&1 &
  nats_pid=$!
  for ((i = 0; i < 100; i++)); do
    grep -q "Server is ready" "$dir/log" 2>/dev/null && break
    sleep 0.05
  done
  port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log")
  monitor=$(sed -n 's/.*Starting http monitor on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log")
  if [[ -z $port || -z $monitor ]]; then
    echo "nats-server did not start:" >&2
    cat "$dir/log" >&2
    return 1
  fi
  nats_url=nats://127.0.0.1:$port
  nats_monitor=http://127.0.0.1:$monitor
}
