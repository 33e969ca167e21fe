#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and prints one summary line per target; exits
# non-zero on any crash, timeout or out-of-memory. Not part of tests/all.sh (it takes minutes).
#
#   bash fuzz/run.sh                      # 120 s per target
#   FUZZ_SECONDS=300 bash fuzz/run.sh multipart concat
#
# Settings (environment): FUZZ_SECONDS per target (120), FUZZ_JOBS parallel libFuzzer
# processes per target (2: the machine has 2 cores), FUZZ_MAX_LEN longest input (65536).
# Targets run one after another. Inputs that fail land in fuzz/artifacts/TARGET/; replay one
# with `fuzz/target/*/release/TARGET FILE`. The growing corpus is fuzz/corpus/TARGET/, seeded
# from fuzz/seeds/TARGET/ and tests/fixtures/ (neither corpus nor artifacts is committed).
#
# cargo-fuzz is not needed: the targets are built with libfuzzer-sys and the flags cargo-fuzz
# passes (`cargo fuzz run TARGET` works too where it is installed). On nightly they also get
# AddressSanitizer, whose malloc hooks let libFuzzer enforce -malloc_limit_mb; without nightly
# the script builds on stable without a sanitizer.
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir=$PWD

seconds=${FUZZ_SECONDS:-120}
jobs=${FUZZ_JOBS:-2}
max_len=${FUZZ_MAX_LEN:-65536}
all_targets=(jpeg_walker multipart concat content_type_boundary)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
((jobs >= 1 && jobs <= 2)) || { echo "FUZZ_JOBS must be 1 or 2" >&2; exit 2; }

triple=$(rustc -vV | sed -n 's/^host: //p')
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=nightly
  cargo=(cargo +nightly)
  sanitizer="-Zsanitizer=address"
else
  toolchain=stable
  cargo=(cargo)
  sanitizer=""
fi

# cargo-fuzz's instrumentation flags, plus debug assertions and overflow checks: an arithmetic
# overflow in a parser is a bug even in a release build.
rustflags=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  -Cllvm-args=-sanitizer-coverage-stack-depth
  -Cllvm-args=-simplifycfg-branch-fold-threshold=0
  --cfg fuzzing
  -Cdebug-assertions
  -Coverflow-checks
  -Ccodegen-units=1
  $sanitizer
)
echo "=== building fuzz targets ($toolchain${sanitizer:+, AddressSanitizer})"
# --target keeps the flags away from build scripts and proc macros. No --locked: fuzz/Cargo.lock
# follows the main crate's dependencies when they change.
RUSTFLAGS="${rustflags[*]}" "${cargo[@]}" build --release --target "$triple" --bins
bin_dir=$fuzz_dir/target/$triple/release
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

# Seeds: the committed ones, plus the fixture streams. The splitter targets read five settings
# bytes first (see src/lib.rs), so their fixture seeds get a prefix: cap 64 KiB, chunk sizes
# 8 KiB, 7, 1 and 17 bytes; the multipart ones once with ffmpeg's boundary, once learning it.
seed() {
  local target=$1 corpus=corpus/$1
  mkdir -p "$corpus"
  cp seeds/"$target"/* "$corpus"/
  local fixtures=../tests/fixtures
  case $target in
    jpeg_walker)
      for f in "$fixtures"/*.mjpeg; do cp "$f" "$corpus/fixture-$(basename "$f")"; done ;;
    concat)
      for f in "$fixtures"/*.mjpeg; do
        { printf '\x00\xff\x06\x00\x10'; cat "$f"; } >"$corpus/fixture-$(basename "$f")"
      done ;;
    multipart)
      { printf '\x04\xff\x06\x00\x10'; cat "$fixtures/ffmpeg-160x120.mpjpeg"; } \
        >"$corpus/fixture-ffmpeg-boundary.mpjpeg"
      { printf '\x00\x10\x00\x3f\xff'; cat "$fixtures/ffmpeg-160x120.mpjpeg"; } \
        >"$corpus/fixture-learned-boundary.mpjpeg" ;;
    content_type_boundary) ;;
  esac
}

# The last value of "stat::NAME: N" over a target's job logs, summed or maximised.
stat_sum() { cat "$2"/fuzz-*.log | sed -n "s/^stat::$1: *//p" | awk '{s+=$1} END {print s+0}'; }
stat_max() { cat "$2"/fuzz-*.log | sed -n "s/^stat::$1: *//p" | awk '$1>m {m=$1} END {print m+0}'; }
count() { find "$1" -maxdepth 1 -type f -name "$2" 2>/dev/null | wc -l; }

summary=()
failed=0
for target in "${targets[@]}"; do
  [ -x "$bin_dir/$target" ] || { echo "unknown target $target" >&2; exit 2; }
  seed "$target"
  logs=$fuzz_dir/logs/$target
  artifacts=$fuzz_dir/artifacts/$target
  rm -rf "$logs"
  mkdir -p "$logs" "$artifacts"
  before_crash=$(count "$artifacts" 'crash-*')
  before_timeout=$(count "$artifacts" 'timeout-*')
  before_oom=$(count "$artifacts" 'oom-*')
  args=(
    -max_total_time="$seconds"
    -timeout=2
    -rss_limit_mb=1024
    -malloc_limit_mb=256
    -max_len="$max_len"
    -print_final_stats=1
    -artifact_prefix="$artifacts/"
    "$fuzz_dir/corpus/$target"
  )
  echo "=== $target: $seconds s, $jobs job(s), logs in fuzz/logs/$target/"
  start=$(date +%s)
  status=0
  if ((jobs == 1)); then
    "$bin_dir/$target" "${args[@]}" >"$logs/fuzz-0.log" 2>&1 || status=$?
  else
    # libFuzzer's -jobs writes one fuzz-N.log per job into the working directory.
    (cd "$logs" && "$bin_dir/$target" -jobs="$jobs" -workers="$jobs" "${args[@]}" \
      >"$logs/parent.log" 2>&1) || status=$?
  fi
  elapsed=$(($(date +%s) - start))
  execs=$(stat_sum number_of_executed_units "$logs")
  fuzz_secs=$(cat "$logs"/fuzz-*.log | sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' |
    awk '$1>m {m=$1} END {print m+0}')
  ((fuzz_secs > 0)) || fuzz_secs=$((elapsed > 0 ? elapsed : 1))
  rss=$(stat_max peak_rss_mb "$logs")
  crashes=$(($(count "$artifacts" 'crash-*') - before_crash))
  timeouts=$(($(count "$artifacts" 'timeout-*') - before_timeout))
  ooms=$(($(count "$artifacts" 'oom-*') - before_oom))
  # A job that died without writing an artifact (or its final stats) is a failure too.
  done_jobs=$(cat "$logs"/fuzz-*.log | grep -c '^Done [0-9]* runs' || true)
  corpus=$(count "corpus/$target" '*')
  verdict=ok
  if ((status != 0 || crashes + timeouts + ooms > 0 || done_jobs < jobs)); then
    verdict=FAILED
    failed=1
    grep -h -m3 -E 'ERROR|panicked|Test unit written' "$logs"/fuzz-*.log || true
  fi
  summary+=("$(printf '%-22s %s: %d execs in %d s (%d exec/s, %d jobs), crashes %d, timeouts %d, ooms %d, peak RSS %d MiB, corpus %d files' \
    "$target" "$verdict" "$execs" "$fuzz_secs" $((execs / fuzz_secs)) "$jobs" \
    "$crashes" "$timeouts" "$ooms" "$rss" "$corpus")")
done

echo
echo "=== summary ($toolchain${sanitizer:+, AddressSanitizer}, -timeout=2, -rss_limit_mb=1024, -malloc_limit_mb=256)"
printf '%s\n' "${summary[@]}"
exit "$failed"
