# Shared helpers for scripts/bench/*: data generation and timing. Source it, don't run it.
set -euo pipefail
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED=${SHARED:-$BENCH_ROOT/../shared}
DATA=${BENCH_DATA:-$BENCH_ROOT/scripts/bench/data}
mkdir -p "$DATA"

build_tlm() {
  (cd "$BENCH_ROOT" && cargo build --release --quiet)
  TLM_BIN=$BENCH_ROOT/target/release
}

# gen_data LINES SERIES -> prints the path of a cached tlm-gen NDJSON file
gen_data() {
  local lines=$1 series=$2 f="$DATA/gen-$1-$2.ndjson"
  if [ ! -s "$f" ]; then
    CARGO_TARGET_DIR="$DATA/gen-target" cargo build --release --quiet --manifest-path "$SHARED/agg-bench/gen/Cargo.toml"
    "$DATA/gen-target/release/tlm-gen" --lines "$lines" --series "$series" > "$f.tmp"
    mv "$f.tmp" "$f"
  fi
  echo "$f"
}

# time_cmd CMD... -> prints the median wall seconds of $RUNS runs (default 3)
time_cmd() {
  local runs=${RUNS:-5} t=()
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N)
    bash -c "$*"
    e=$(date +%s%N)
    t+=("$(( e - s ))")
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f\n", a[int((NR+1)/2)]/1e9}'
}

# row NAME LINES SECONDS TLM_SECONDS -> one table row: time, lines/s, and tlm's speed relative
# to this row (>1: tlm is faster)
row() {
  awk -v n="$1" -v l="$2" -v s="$3" -v t="$4" 'BEGIN {
    printf "| %-40s | %9.3f s | %13.0f | %8.2fx |\n", n, s, l / s, s / t }'
}

table_head() {
  echo "| command                                  |        time |       lines/s | tlm speed vs this |"
  echo "|------------------------------------------|-------------|---------------|----------|"
}
