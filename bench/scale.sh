#!/usr/bin/env bash
# Users at scale: resident memory per idle user, and the spawn schedule. Run on demand:
#
#   bash bench/scale.sh
#
# 1. USERS_OWN users (default 19,000) each holding its own keep-alive connection to nginx, with a
#    long think time, on one local worker: RSS per user = (RSS at USERS_OWN - RSS at BASE users)
#    / (USERS_OWN - BASE), both measured once every user has made its first request and is idle.
#    The fd hard limit here is 20,000 per process, so 19,000 connections is what one process can
#    hold; nginx runs 4 worker processes (reuseport) to hold them.
# 2. USERS_SHARED users (default 100,000) on the shared pool (connection = "shared"), spawned at
#    SPAWN_RATE (10,000/s): RSS per user the same way, and the users running per interval (from
#    the summary's series) against the schedule.
#
# Environment: USERS_OWN, USERS_SHARED, SPAWN_RATE, BASE (100), THINK (60s).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

USERS_OWN=${USERS_OWN:-19000}
USERS_SHARED=${USERS_SHARED:-100000}
SPAWN_RATE=${SPAWN_RATE:-10000}
BASE=${BASE:-100}
THINK=${THINK:-60s}

need_time
need_nginx
build_release -p stampede-master
STAMPEDE=$ROOT/target/release/stampede-master
ulimit -n "$(ulimit -Hn)"
say "fd limit $(ulimit -n)"

PORT=$(free_port)
start_nginx "$PORT" 4 8000
# reuseport spreads connections evenly over the 4 nginx workers.
sed -i "s/listen 127.0.0.1:$PORT backlog=65535;/listen 127.0.0.1:$PORT backlog=65535 reuseport;/" \
    "$WORK/nginx-$PORT/nginx.conf"
kill -HUP "$NGINX_PID"
sleep 1

# run_users USERS RUN_TIME SPAWN MODE: runs stampede, samples its RSS SETTLE seconds before the
# end (every user idle in its think time), leaves the summary in $WORK/summary.json and prints
# the RSS in KiB.
run_users() {
    local users=$1 run_time=$2 spawn=$3 mode=$4
    scenario_file "$WORK/scale.toml" "http://127.0.0.1:$PORT" "$users" "${run_time}s" \
        "spawn_rate = $spawn
wait = { kind = \"constant\", duration = \"$THINK\" }
connection = \"$mode\""
    rm -f "$WORK/summary.json"
    taskset -c "$GEN_CORE" "$STAMPEDE" run "$WORK/scale.toml" --headless --local-workers 1 \
        --worker-threads 1 --summary "$WORK/summary.json" --status-every 1h \
        >"$WORK/out" 2>"$WORK/err" &
    local pid=$! rss
    PIDS+=("$pid")
    sleep $((run_time - 3))
    rss=$(rss_kib "$pid")
    wait "$pid" || { tail -5 "$WORK/err" >&2; return 1; }
    echo "$rss"
}

ramp_s() { awk -v u="$1" -v r="$2" 'BEGIN {print int(u / r + 0.999)}'; }

# --- 1. own connections ---
settle=15
own_time=$(($(ramp_s "$USERS_OWN" 2000) + settle))
rss_base=$(run_users "$BASE" "$own_time" 2000 per_user)
rss_own=$(run_users "$USERS_OWN" "$own_time" 2000 per_user)
own_requests=$(python3 -c 'import json; print(json.load(open("'"$WORK"'/summary.json"))["totals"]["requests"])')
own_errors=$(python3 -c 'import json; t = json.load(open("'"$WORK"'/summary.json"))["totals"]; print(sum(t["errors"].values()))')

# --- 2. shared pool ---
shared_time=$(($(ramp_s "$USERS_SHARED" "$SPAWN_RATE") + settle))
rss_base_shared=$(run_users "$BASE" "$shared_time" "$SPAWN_RATE" shared)
rss_shared=$(run_users "$USERS_SHARED" "$shared_time" "$SPAWN_RATE" shared)
cp "$WORK/summary.json" "$WORK/shared.json"

echo "users at scale ($(describe_machine))"
echo "one local worker, one engine thread, think time $THINK, nginx 4 workers; RSS sampled 3 s before the end"
awk -v b="$rss_base" -v r="$rss_own" -v n="$USERS_OWN" -v m="$BASE" -v q="$own_requests" -v e="$own_errors" 'BEGIN {
    printf "  own connections: %d users: RSS %.1f MiB (%d users: %.1f MiB) -> %.1f KiB per user with its connection (goal <= 16)\n",
        n, r / 1024, m, b / 1024, (r - b) / (n - m)
    printf "                   %d requests, %d transport errors\n", q, e }'
awk -v b="$rss_base_shared" -v r="$rss_shared" -v n="$USERS_SHARED" -v m="$BASE" 'BEGIN {
    printf "  shared pool:     %d users: RSS %.1f MiB (%d users: %.1f MiB) -> %.1f KiB per user\n",
        n, r / 1024, m, b / 1024, (r - b) / (n - m) }'
python3 - "$WORK/shared.json" "$USERS_SHARED" "$SPAWN_RATE" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
users, rate = int(sys.argv[2]), float(sys.argv[3])
print(f"  spawn of {users} users at {rate:.0f}/s (users running at the end of each 1 s interval, as reported):")
worst = 0
for p in s["series"]:
    if p["t"] > s["duration_s"] - 1:
        break  # the last interval ends with the stop
    want = min(users, int(rate * p["t"]))
    worst = max(worst, abs(p["users"] - want))
    if p["t"] <= users / rate + 2:
        print(f"    t={p['t']:4.0f}s users={p['users']:7d} schedule={want:7d}")
t = s["totals"]
print(f"  largest gap to the schedule: {worst} users; {t['requests']} requests, "
      f"transport errors {t['errors']}")
EOF
