#!/usr/bin/env bash
# A/A and A/B: does a 95% interval mean what it says? Three workload servers pinned to
# SERVER_CORE: two identical (labels amd64 and arm64: A/A) and one with EXTRA_DELAY more on
# every answer (label arm64-slow: A/B); stampede loads the three at once on GEN_CORE, RUNS
# times for RUN_TIME each. Counts the runs whose throughput-ratio interval (arm64 vs amd64)
# covers 1 (goal: at least 17 of 20) and those whose p99-ratio interval (arm64-slow vs amd64)
# leaves 1 out (goal: all). The three targets of one run share the machine's moments, and the
# intervals are paired per batch, so the machine's noise moves them alike.
#
#   bash bench/aa.sh            # RUNS=20 RUN_TIME=30s EXTRA_DELAY=5ms DIM=100 USERS=30 [BIN=DIR]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-20}
RUN_TIME=${RUN_TIME:-30s}
EXTRA_DELAY=${EXTRA_DELAY:-5ms}
DIM=${DIM:-100}
USERS=${USERS:-30}

# BIN=DIR: binaries built already (e.g. copied away from a shared target directory).
if [[ -z ${BIN:-} ]]; then
    build_release -p stampede-master -p stampede-workload-server
    BIN=$RELEASE
fi
say "machine: $(describe_machine)"

# start_server LABEL EXTRA_DELAY: its port in PORT (not printed: a command substitution would
# wait for the server's end on its inherited stdout).
start_server() {
    PORT=$(free_port)
    taskset -c "$SERVER_CORE" "$BIN/stampede-workload-server" --listen "127.0.0.1:$PORT" \
        --matrix-dim "$DIM" --arch-label "$1" --extra-delay "$2" \
        --max-queue 1000 >/dev/null 2>>"$WORK/servers.log" &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        curl -fsS --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    say "a workload server did not start"; cat "$WORK/servers.log" >&2; return 1
}
start_server amd64 0s; amd=$PORT
start_server arm64 0s; arm=$PORT
start_server arm64-slow "$EXTRA_DELAY"; slow=$PORT

cat >"$WORK/aa.toml" <<TOML
name = "aa"
run_time = "$RUN_TIME"
report_interval = "500ms"
stop_timeout = "5s"

[[target]]
name = "amd"
url = "http://127.0.0.1:$amd/amd"
arch = "amd64"

[[target]]
name = "arm"
url = "http://127.0.0.1:$arm/arm"
arch = "arm64"

[[target]]
name = "slow"
url = "http://127.0.0.1:$slow/arm"
arch = "arm64-slow"

[[request]]
name = "runtime"
path = "/runtime"
timeout = "10s"

[load]
users = $USERS
spawn_rate = 1000
wait = { kind = "between", min = "10ms", max = "30ms" }
TOML

printf '%-4s %8s %24s %7s %24s %7s %8s\n' run batches "A/A rps ratio [95% CI]" covers \
    "A/B p99 ratio [95% CI]" "excl.1" "p99 ms"
for run in $(seq 1 "$RUNS"); do
    taskset -c "$GEN_CORE" "$BIN/stampede-master" run "$WORK/aa.toml" --headless \
        --summary "$WORK/aa-$run.json" >"$WORK/aa-$run.out" 2>"$WORK/aa-$run.err" ||
        { say "run $run failed:"; tail -5 "$WORK/aa-$run.err" >&2; exit 1; }
    python3 - "$WORK/aa-$run.json" "$run" <<'PY' | tee -a "$WORK/table"
import json, sys
s = json.load(open(sys.argv[1]))
c = s["comparison"]
aa = c["by_arch"]["arm64"]["ci"]["rps_ratio"]
ab = c["by_arch"]["arm64-slow"]["ci"]["p99_ratio"]
covers = aa["lo"] <= 1.0 <= aa["hi"]
excludes = not (ab["lo"] <= 1.0 <= ab["hi"])
p99 = f'{s["by_arch"]["amd64"]["latency_ms"]["p99"]:.1f}/{s["by_arch"]["arm64-slow"]["latency_ms"]["p99"]:.1f}'
print(f'{sys.argv[2]:<4} {c["window"]["batches"]:>8} '
      f'{aa["estimate"]:>8.3f} [{aa["lo"]:.3f}, {aa["hi"]:.3f}] {"yes" if covers else "NO":>7} '
      f'{ab["estimate"]:>8.3f} [{ab["lo"]:.3f}, {ab["hi"]:.3f}] {"yes" if excludes else "NO":>7} {p99:>8}')
PY
done
covered=$(awk '$6 == "yes"' "$WORK/table" | wc -l)
excluded=$(awk '$10 == "yes"' "$WORK/table" | wc -l)
echo "A/A: the throughput-ratio interval covers 1 in $covered of $RUNS runs (goal: at least 17 of 20)"
echo "A/B: the p99-ratio interval leaves 1 out in $excluded of $RUNS runs (goal: all)"
