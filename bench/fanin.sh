#!/usr/bin/env bash
# Master fan-in: one master, WORKERS synthetic workers (bench/swarm, one process, one gRPC
# connection per worker), each reporting every second for 3 targets x 2 arches x every outcome
# class with realistic histograms. Run on demand, not in CI:
#
#   bash bench/fanin.sh
#
# The master is pinned to core 0 and the swarm to core 1. Prints the master's CPU % (sampled from
# /proc every SAMPLE seconds, and the whole run from /usr/bin/time), its resident memory over
# time, and from the swarm: reports sent and acknowledged, the backlog (sent - acked) and the lag
# from each interval's end to the master's Ack, which the master sends once the report is counted
# in its aggregate. Goal: <= 1 core, lag < 1 s, no backlog growth.
#
# The master keeps its journal (as every run does) unless JOURNAL=0; the script prints the
# journal's size, the master's own account of how far behind it was (the summary's `master`
# section), workers declared missing, and checks that the summary counted exactly the requests
# of every report the swarm sent.
#
# The swarm sends plain V2 histograms as workers do; DEFLATE=1 makes it send V2 + deflate, as
# workers did before, to measure what inflating costs the master.
#
# Environment: WORKERS (1000), RUN_TIME (2m), SAMPLE (10), JOURNAL (1), DEFLATE (0).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

WORKERS=${WORKERS:-1000}
RUN_TIME=${RUN_TIME:-2m}
SAMPLE=${SAMPLE:-10}
JOURNAL=${JOURNAL:-1}
JOURNAL_FLAG=()
((JOURNAL)) || JOURNAL_FLAG=(--no-journal)
DEFLATE=${DEFLATE:-0}
SWARM_FLAGS=()
((DEFLATE)) && SWARM_FLAGS=(--deflate)

need_time
build_release -p stampede-master -p stampede-swarm
MASTER=$ROOT/target/release/stampede-master
SWARM=$ROOT/target/release/stampede-swarm
if (($(ulimit -n) < WORKERS + 256)); then
    ulimit -n $((WORKERS + 256)) 2>/dev/null || say "note: fd limit $(ulimit -n) is low for $WORKERS workers"
fi

PORT=$(free_port)
cat >"$WORK/fanin.toml" <<EOF
name = "fan-in"
run_time = "$RUN_TIME"
report_interval = "1s"
stop_timeout = "5s"
# The swarm sends no HTTP; the targets only give the series their names.
[[target]]
name = "a"
url = "http://127.0.0.1:9/a"
arch = "arm64"
[[target]]
name = "b"
url = "http://127.0.0.1:9/b"
arch = "amd64"
[[target]]
name = "c"
url = "http://127.0.0.1:9/c"
arch = "amd64"
[[request]]
name = "get"
path = "/"
[load]
users = $((WORKERS * 100))
EOF

say "master on core $SERVER_CORE (port $PORT), $WORKERS synthetic workers on core $GEN_CORE, $RUN_TIME"
taskset -c "$SERVER_CORE" /usr/bin/time -f '%U %S %M %e' -o "$WORK/master.time" \
    "$MASTER" run "$WORK/fanin.toml" --headless --expect-workers "$WORKERS" \
    --bind "127.0.0.1:$PORT" --wait-workers 5m --summary "$WORK/summary.json" \
    --status-every 30s --token bench-fanin --state-dir "$WORK/state" "${JOURNAL_FLAG[@]}" \
    >"$WORK/master.out" 2>"$WORK/master.err" &
TIME_PID=$!
PIDS+=("$TIME_PID")
sleep 0.5
MASTER_PID=$(pgrep -P "$TIME_PID" | head -n1)
taskset -c "$GEN_CORE" "$SWARM" --master "http://127.0.0.1:$PORT" --workers "$WORKERS" \
    --print-every "${SAMPLE}s" --token bench-fanin "${SWARM_FLAGS[@]}" >"$WORK/swarm.out" 2>"$WORK/swarm.err" &
SWARM_PID=$!
PIDS+=("$SWARM_PID")

# Sample the master: CPU since the last sample (ticks of 1/CLK_TCK s) and resident memory.
TCK=$(getconf CLK_TCK)
prev=
: >"$WORK/samples"
while kill -0 "$MASTER_PID" 2>/dev/null; do
    read -r ut st < <(awk '{print $14, $15}' "/proc/$MASTER_PID/stat" 2>/dev/null || echo "")
    [[ -z ${ut:-} ]] && break
    now=$(date +%s.%N)
    rss=$(rss_kib "$MASTER_PID" 2>/dev/null || echo 0)
    if [[ -n $prev ]]; then
        read -r pt pu ps <<<"$prev"
        awk -v t="$now" -v pt="$pt" -v u="$ut" -v s="$st" -v pu="$pu" -v ps="$ps" -v k="$TCK" \
            -v rss="$rss" 'BEGIN { printf "%.0f %.1f %d\n", t, 100 * ((u + s) - (pu + ps)) / k / (t - pt), rss }' \
            >>"$WORK/samples"
    fi
    prev="$now $ut $st"
    sleep "$SAMPLE"
done
wait "$TIME_PID" || true
wait "$SWARM_PID" || true

echo "master fan-in ($(describe_machine))"
printf '%s synthetic workers (one gRPC stream each), 3 targets x 2 arches x 9 outcome classes, report every 1s, %s\n' \
    "$WORKERS" "$RUN_TIME"
echo "  master samples every ${SAMPLE}s (CPU % of one core, RSS MiB); the first ones include workers joining:"
awk 'NR == 1 {t0 = $1} {printf "    t=%4ds cpu=%6.1f%% rss=%7.1f MiB\n", $1 - t0, $2, $3 / 1024}' "$WORK/samples"
sed 's/^/  /' "$WORK/swarm.err" | grep -E 'swarm( t=|:)' || true
read -r mu ms mrss mel <"$WORK/master.time"
awk -v u="$mu" -v s="$ms" -v e="$mel" -v r="$mrss" 'BEGIN {
    printf "  master whole process: %.1f CPU-s in %.0f s = %.1f%% of a core (incl. start and 1000 joins), max RSS %.1f MiB\n", u + s, e, 100 * (u + s) / e, r / 1024 }'
# Steady state: the samples from the second third to the end of the load.
awk '{c[NR] = $2; r[NR] = $3} END { a = int(NR / 3) + 1; n = 0; s = 0; mx = 0
    for (i = a; i < NR; i++) { s += c[i]; n++; if (c[i] > mx) mx = c[i] }
    if (n) printf "  master steady state: mean %.1f%%, max %.1f%% of a core; RSS %.1f -> %.1f MiB\n", s / n, mx, r[a] / 1024, r[NR - 1] / 1024 }' \
    "$WORK/samples"
grep -E '^swarm total' "$WORK/swarm.out" | sed 's/^/  /'
grep -E 'rejected|missing|lost' "$WORK/master.err" | head -5 | sed 's/^/  master: /' || true
missing=$(grep -c 'missing: silent' "$WORK/master.err" || true)
echo "  workers declared missing: $missing"
if ((JOURNAL)); then
    du -b "$WORK"/state/*.journal 2>/dev/null | awk '{printf "  journal: %.1f MB\n", $1 / 1e6}'
else
    echo "  journal: off (--no-journal)"
fi
python3 - "$WORK/summary.json" "$WORK/swarm.out" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
m = s.get("master") or {}
q = m.get("queue_ms", {})
print(f"  master's own account: reports waited p50 {q.get('p50', 0):.1f} ms, p99 {q.get('p99', 0):.1f} ms, max {q.get('max', 0):.0f} ms; behind for {m.get('behind_s', 0):.0f} s")
line = open(sys.argv[2]).read()
sent = re.search(r"requests_sent=(\d+)", line)
acked = re.search(r"requests_acked=(\d+)", line)
counted = s["totals"]["requests"]
if sent:
    sent, acked = int(sent.group(1)), int(acked.group(1))
    verdict = "every report counted once" if counted == sent else f"MISMATCH: {sent - counted} requests not counted"
    print(f"  requests: swarm sent {sent}, acknowledged {acked}; the summary counted {counted}: {verdict}")
PY
