#!/usr/bin/env bash
# Open-model precision: stampede's open model at RATES (default 2000 and 10000 req/s) against the
# workload server (`/runtime?dim=1`, pinned to SERVER_CORE; stampede on GEN_CORE), for RUN_TIME
# each. Prints the achieved rate three ways — the summary's total over the run, the median of the
# steady intervals (first and last second left out), and the server's own count over the run —
# with the error against the target rate, the dropped arrivals and the latency.
# Not measured here: the send-time error (actual - intended send time); the worker does not
# record it yet.
#
#   bash bench/open.sh            # RATES="2000 10000" RUN_TIME=10s
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RATES=${RATES:-2000 10000}
RUN_TIME=${RUN_TIME:-10s}

build_release -p stampede-master -p stampede-workload-server
BIN=$ROOT/target/release
say "machine: $(describe_machine)"

port=$(free_port)
taskset -c "$SERVER_CORE" "$BIN/stampede-workload-server" --listen "127.0.0.1:$port" \
    --max-queue 100000 2>"$WORK/server.log" &
PIDS+=($!)
for _ in $(seq 1 100); do
    curl -fsS --max-time 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.05
done

served() { # requests the server answered on /runtime, from its own /metrics
    curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" |
        awk '/^stampede_workload_requests_total/ && /route="\/runtime"/ {n += $NF} END {print n + 0}'
}

printf '%-8s %10s %10s %10s %10s %9s %9s %8s %8s %8s %9s %9s\n' target summary steady server \
    "err(sum)" "err(std)" "err(srv)" dropped p50_ms p99_ms lag_p99ms lag_max
for rate in $RATES; do
    scenario=$WORK/open-$rate.toml
    cat >"$scenario" <<TOML
name = "open $rate"
run_time = "$RUN_TIME"
report_interval = "1s"
stop_timeout = "5s"

[[target]]
name = "server"
url = "http://127.0.0.1:$port"
arch = "amd64"

[[request]]
name = "runtime"
path = "/runtime"
query = { dim = "1" }
timeout = "5s"

[load]
model = "open"
rate = $rate
arrivals = "uniform"
max_in_flight = 2000
TOML
    before=$(served)
    taskset -c "$GEN_CORE" "$BIN/stampede-master" run "$scenario" --headless --worker-threads 1 \
        --summary "$WORK/open-$rate.json" >"$WORK/open-$rate.out" 2>"$WORK/open-$rate.err"
    after=$(served)
    python3 - "$WORK/open-$rate.json" "$rate" "$((after - before))" <<'PY'
import json, statistics, sys
s = json.load(open(sys.argv[1]))
rate, server = float(sys.argv[2]), int(sys.argv[3])
d = s["duration_s"]
total = s["totals"]["requests"]
steady = [p["rps"] for p in s["series"]][1:-1]
steady_rps = statistics.median(steady) if steady else float("nan")
err = lambda v: f"{100 * (v - rate) / rate:+.2f}%"
lat = s["totals"]["latency_ms"]
# The worker's own send-time error: when each arrival's request started, minus when it was due.
lag = s.get("send_lag_ms") or {"p99": float("nan"), "max": float("nan")}
print(f"{rate:<8.0f} {total / d:10.1f} {steady_rps:10.1f} {server / d:10.1f} "
      f"{err(total / d):>10} {err(steady_rps):>9} {err(server / d):>9} {s['dropped']:8d} "
      f"{lat['p50']:8.2f} {lat['p99']:8.2f} {lag['p99']:9.3f} {lag['max']:9.3f}")
PY
done
