#!/usr/bin/env bash
# Benchmarks the workload server against the study's Python handler. Run on demand, not in CI:
#
#   bash bench/workload.sh
#
# Prints, with the server pinned to core 0 (taskset -c 0):
#   1. the compute time of one dim=500 request (median of RUNS, from the server's own
#      compute_ms, plus curl's total time) against the study's numpy + pandas path
#      (numpy.random.randint(dim, size=(dim, dim)) twice, pandas.DataFrame(a).dot(
#      pandas.DataFrame(b))) pinned the same way, as a ratio (goal <= 1.0, aim 0.5);
#   2. requests/s at ?dim=1 under wrk pinned to core 1 (goal >= 50,000), median and best of
#      WRK_RUNS runs.
#
# Installs what it lacks (numpy and pandas with pip, wrk with apt-get), builds in release, and
# starts and stops its own server on 127.0.0.1 on a free port. Every step is bounded in time.
#
# Environment: DIM (500), RUNS (7), WRK_RUNS (3), WRK_DURATION (5s), WRK_CONNECTIONS (50).
set -euo pipefail

DIM=${DIM:-500}
RUNS=${RUNS:-7}
WRK_DURATION=${WRK_DURATION:-5s}
WRK_RUNS=${WRK_RUNS:-3}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
SERVER_PID=

cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }

# --- what the benchmark needs -----------------------------------------------------------------
if ! python3 -c 'import numpy, pandas' 2>/dev/null; then
    say "installing numpy and pandas"
    timeout 600 python3 -m pip install --quiet numpy pandas
fi
if ! command -v wrk >/dev/null; then
    say "installing wrk"
    timeout 600 apt-get update -qq
    timeout 600 apt-get install -y -qq wrk >/dev/null
fi
for tool in taskset curl; do
    command -v "$tool" >/dev/null || { say "missing $tool"; exit 1; }
done
if (($(nproc) < 2)); then
    say "note: fewer than 2 cores; wrk and the server will share core 0"
    WRK_CORE=0
else
    WRK_CORE=1
fi

say "building (release)"
(cd "$ROOT" && timeout 1200 cargo build --release --quiet -p stampede-workload-server)
BIN="$ROOT/target/release/stampede-workload-server"

# --- the server, pinned to core 0, on a free port ---------------------------------------------
taskset -c 0 "$BIN" --listen 127.0.0.1:0 --max-matrix-dim 2000 2>"$WORK/server.log" &
SERVER_PID=$!
ADDR=
for _ in $(seq 1 200); do
    ADDR=$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$WORK/server.log" | head -n1)
    [[ -n $ADDR ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.05
done
[[ -n $ADDR ]] || { say "server did not start"; cat "$WORK/server.log" >&2; exit 1; }
URL="http://$ADDR"
say "server at $URL (pinned to core 0)"

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. one dim=500 request against numpy + pandas ---------------------------------------------
curl -fsS --max-time 60 "$URL/runtime?dim=$DIM" >/dev/null # warm-up
: >"$WORK/rust_compute" >"$WORK/rust_curl"
for _ in $(seq 1 "$RUNS"); do
    out=$(curl -fsS --max-time 60 -w ' %{time_total}' "$URL/runtime?dim=$DIM")
    sed -n 's/.*"compute_ms":\([0-9.]*\).*/\1/p' <<<"$out" >>"$WORK/rust_compute"
    awk 'END {print $NF * 1000}' <<<"$out" >>"$WORK/rust_curl"
done
RUST_MS=$(median <"$WORK/rust_compute")
RUST_CURL_MS=$(median <"$WORK/rust_curl")

cat >"$WORK/study.py" <<'EOF'
import sys, time
import numpy, pandas

dim, runs = int(sys.argv[1]), int(sys.argv[2])

def study():
    # The study's handler: two random integer matrices, multiplied through pandas.
    a = numpy.random.randint(dim, size=(dim, dim))
    b = numpy.random.randint(dim, size=(dim, dim))
    return pandas.DataFrame(a).dot(pandas.DataFrame(b))

def plain_numpy():
    a = numpy.random.randint(dim, size=(dim, dim))
    b = numpy.random.randint(dim, size=(dim, dim))
    return numpy.dot(a, b)

for name, work in (("pandas", study), ("numpy", plain_numpy)):
    work()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    print(name, times[len(times) // 2])
EOF
timeout 600 taskset -c 0 python3 "$WORK/study.py" "$DIM" "$RUNS" >"$WORK/python"
PANDAS_MS=$(awk '$1 == "pandas" {print $2}' "$WORK/python")
NUMPY_MS=$(awk '$1 == "numpy" {print $2}' "$WORK/python")

# --- 2. requests/s at dim=1 under wrk -----------------------------------------------------------
# Several short runs: on a shared machine the best one is the least disturbed.
: >"$WORK/rps"
for _ in $(seq 1 "$WRK_RUNS"); do
    timeout 120 taskset -c "$WRK_CORE" wrk -t1 -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" \
        "$URL/runtime?dim=1" >"$WORK/wrk"
    awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk" >>"$WORK/rps"
    WRK_ERRORS=$(grep -E 'Non-2xx|Socket errors' "$WORK/wrk" || true)
    [[ -z $WRK_ERRORS ]] || say "wrk: $WRK_ERRORS"
done
RPS_MEDIAN=$(median <"$WORK/rps")
RPS_BEST=$(sort -g "$WORK/rps" | tail -n1)

# --- report -------------------------------------------------------------------------------------
echo "workload-server benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -m))"
printf 'dim=%s, median of %s, server on core 0\n' "$DIM" "$RUNS"
printf '  rust   compute_ms      %9.2f ms   (curl total %.2f ms)\n' "$RUST_MS" "$RUST_CURL_MS"
printf '  python pandas .dot()   %9.2f ms   (the study path)\n' "$PANDAS_MS"
printf '  python numpy.dot()     %9.2f ms\n' "$NUMPY_MS"
awk -v r="$RUST_MS" -v p="$PANDAS_MS" -v n="$NUMPY_MS" 'BEGIN {
    printf "  ratio rust/pandas      %9.3f      (goal <= 1.0, aim 0.5)\n", r / p
    printf "  ratio rust/numpy       %9.3f\n", r / n
}'
printf 'dim=1 throughput: wrk -t1 -c%s -d%s on core %s, server on core 0\n' \
    "$WRK_CONNECTIONS" "$WRK_DURATION" "$WRK_CORE"
printf '  requests/s             %9.0f      median of %s runs (goal >= 50000)\n' "$RPS_MEDIAN" "$WRK_RUNS"
printf '  requests/s             %9.0f      best run\n' "$RPS_BEST"
echo "load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews all of this)"
