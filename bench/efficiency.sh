#!/usr/bin/env bash
# Generator efficiency: requests per CPU-second of stampede against wrk, oha and Locust, on the
# same target. Run on demand, not in CI:
#
#   bash bench/efficiency.sh
#
# nginx (nginx-light, one worker process, keep-alive, a 2-byte answer) is pinned to core 0; each
# generator in turn is pinned to core 1 with 64 connections/users and no think time, for the same
# duration: `wrk -t1 -c64`, stampede (one local worker with one engine thread, 64 users),
# `oha -c64`, Locust (FastHttpUser, one process). CPU is user+sys from /usr/bin/time (the whole
# process: stampede's includes its master). The generators are interleaved and each figure is
# the median of ROUNDS, so a neighbour loading the machine hits them all alike.
#
# Installs what it lacks (nginx-light, wrk, time with apt-get; locust with pip; oha with cargo
# install into $BENCH_CACHE), builds in release, and stops its own processes.
#
# Environment: DURATION (10, seconds), ROUNDS (3), CONNECTIONS (64), TOOLS ("wrk stampede oha
# locust").
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
TOOLS=${TOOLS:-wrk stampede oha locust}

need_time
need_nginx
for t in $TOOLS; do
    case $t in
    wrk) need_wrk ;;
    oha) need_oha ;;
    locust) need_locust ;;
    esac
done
build_release -p stampede-master
STAMPEDE=$RELEASE/stampede-master

PORT=$(free_port)
start_nginx "$PORT" 1 4096
URL="http://127.0.0.1:$PORT/"
say "nginx at $URL (core $SERVER_CORE); generators on core $GEN_CORE; ${DURATION}s x $ROUNDS rounds"

scenario_file "$WORK/bench.toml" "http://127.0.0.1:$PORT" "$CONNECTIONS" "${DURATION}s" \
    'wait = { kind = "none" }'
cat >"$WORK/locustfile.py" <<'EOF'
from locust import FastHttpUser, constant, task


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/")
EOF

gen() { taskset -c "$GEN_CORE" /usr/bin/time -f '%U %S %M' -o "$WORK/time" "$@"; }

# run_TOOL: runs one measurement, prints "REQUESTS CPU_SECONDS".
run_wrk() {
    gen timeout $((DURATION + 30)) wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL" >"$WORK/out"
    local n
    n=$(awk '/requests in/ {print $1}' "$WORK/out")
    echo "$n $(cpu_of "$WORK/time")"
}

run_stampede() {
    rm -f "$WORK/summary.json"
    gen timeout $((DURATION + 60)) "$STAMPEDE" run "$WORK/bench.toml" --headless \
        --local-workers 1 --worker-threads 1 --summary "$WORK/summary.json" \
        --status-every 1h >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }
    local n
    n=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["totals"]["requests"])' \
        "$WORK/summary.json")
    echo "$n $(cpu_of "$WORK/time")"
}

run_oha() {
    gen timeout $((DURATION + 30)) "$OHA" -z "${DURATION}s" -c "$CONNECTIONS" --no-tui \
        --output-format json "$URL" >"$WORK/out"
    local n
    n=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
print(sum(s["statusCodeDistribution"].values()))' "$WORK/out")
    echo "$n $(cpu_of "$WORK/time")"
}

run_locust() {
    rm -f "$WORK"/locust_*.csv
    gen timeout $((DURATION + 60)) locust -f "$WORK/locustfile.py" --headless \
        -u "$CONNECTIONS" -r "$CONNECTIONS" -t "${DURATION}s" -H "http://127.0.0.1:$PORT" \
        --csv "$WORK/locust" --only-summary --loglevel WARNING >"$WORK/out" 2>&1
    local n
    n=$(python3 -c 'import csv,sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["Name"] == "Aggregated"]
print(rows[0]["Request Count"])' "$WORK/locust_stats.csv")
    echo "$n $(cpu_of "$WORK/time")"
}

for round in $(seq 1 "$ROUNDS"); do
    for t in $TOOLS; do
        read -r n cpu < <("run_$t")
        awk 'END {print $1}' "$WORK/time" >>"$WORK/$t.user"
        awk 'END {print $2}' "$WORK/time" >>"$WORK/$t.sys"
        rate=$(awk -v n="$n" -v c="$cpu" 'BEGIN {printf "%.0f", (c > 0) ? n / c : 0}')
        say "round $round: $t $n requests, $cpu CPU-s, $rate req/CPU-s"
        echo "$n" >>"$WORK/$t.requests"
        echo "$cpu" >>"$WORK/$t.cpu"
        echo "$rate" >>"$WORK/$t.rate"
    done
done

echo "generator efficiency ($(describe_machine))"
printf 'nginx 1 worker on core %s; each generator on core %s, %s connections/users, %ss, median of %s\n' \
    "$SERVER_CORE" "$GEN_CORE" "$CONNECTIONS" "$DURATION" "$ROUNDS"
printf '  %-9s %10s %7s %7s %7s %11s %15s\n' tool requests user_s sys_s cpu_s req/cpu_s \
    "spread(min-max)"
for t in $TOOLS; do
    printf '  %-9s %10s %7s %7s %7s %11s %15s\n' "$t" "$(median <"$WORK/$t.requests")" \
        "$(median <"$WORK/$t.user")" "$(median <"$WORK/$t.sys")" \
        "$(median <"$WORK/$t.cpu")" "$(median <"$WORK/$t.rate")" \
        "$(sort -g "$WORK/$t.rate" | awk 'NR==1 {a=$1} {b=$1} END {printf "%d-%d", a, b}')"
done
if [[ -f $WORK/stampede.rate ]]; then
    s=$(median <"$WORK/stampede.rate")
    for t in $TOOLS; do
        [[ $t == stampede ]] && continue
        awk -v s="$s" -v o="$(median <"$WORK/$t.rate")" -v t="$t" 'BEGIN {
            goal = (t == "wrk") ? "   (goal >= 0.95)" : (t == "locust") ? "   (goal >= 15)" : ""
            printf "  stampede / %-7s %8.2fx%s\n", t, s / o, goal }'
    done
fi
