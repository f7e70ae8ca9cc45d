#!/usr/bin/env bash
# HTTPS and HTTP/2 efficiency: requests per CPU-second of stampede against wrk, h2load and oha
# on the same TLS target, and memory per idle TLS user. Run on demand, not in CI:
#
#   bash bench/https.sh                 # every mode
#   MODES="h1 h2" bash bench/https.sh   # some of them
#
# nginx (nginx-light, one worker process, TLS 1.3 with an ECDSA P-256 certificate made here by
# openssl, session tickets on, a 2-byte answer) is pinned to core 0; each generator in turn is
# pinned to core 1 with one thread, for the same duration; CPU is user+sys from /usr/bin/time
# (stampede's includes its master). Generators are interleaved, each figure the median of ROUNDS.
#
# Modes:
#   h1         HTTPS/1.1 keep-alive, CONNECTIONS (64) connections: `wrk -t1 -cN`, stampede with N
#              users (no think time). Goal: stampede >= 1.0x wrk.
#   h2         HTTP/2 over TLS, H2_CONNECTIONS (8) x H2_STREAMS (100): `h2load -t1 -cC -mS`,
#              `oha --http2 -cC -pS`, stampede (http = "2", connections = C,
#              streams_per_connection = S, C*S users). Goals: >= 0.8x h2load, >= 1.0x oha.
#   handshake  a full TLS handshake per request, CONNECTIONS connections, against a server block
#              that resumes no session: wrk with `Connection: close`, stampede with
#              connection = "close" and resumption = false. (h2load has no connection-per-request
#              mode, so it is not in this one.)
#   idle       memory per idle TLS user: IDLE_USERS (2000) users each holding a kept-alive TLS
#              connection with a 60 s think time vs BASE (100) users; RSS difference per user.
#              Goal <= 32 KiB.
#
# Environment: MODES, DURATION (10), ROUNDS (3), CONNECTIONS (64), H2_CONNECTIONS (8),
# H2_STREAMS (100), IDLE_USERS (2000), BASE (100).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MODES=${MODES:-h1 h2 handshake idle}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
H2_CONNECTIONS=${H2_CONNECTIONS:-8}
H2_STREAMS=${H2_STREAMS:-100}
IDLE_USERS=${IDLE_USERS:-2000}
BASE=${BASE:-100}

need_time
need_nginx
need_wrk
if [[ " $MODES " == *" h2 "* ]]; then
    apt_install h2load nghttp2-client
    need_oha
fi
build_release -p stampede-master
STAMPEDE=$RELEASE/stampede-master
ulimit -n "$(ulimit -Hn)"

# A CA and a server certificate for 127.0.0.1 (ECDSA P-256, what most ingresses serve).
pki() {
    local d=$WORK/pki
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$d/ca.key" -out "$d/ca.pem" -subj /CN=stampede-bench-ca 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/key.pem" -out "$d/csr.pem" -subj /CN=127.0.0.1 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
    openssl x509 -req -in "$d/csr.pem" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/ext" -out "$d/cert.pem" 2>/dev/null
}
pki

# nginx with TLS (h2 and http/1.1 by ALPN) on PORT, one worker on SERVER_CORE.
PORT=$(free_port)
PORT_FULL=$(free_port)
dir=$WORK/nginx-tls
mkdir -p "$dir/logs"
cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    http2_max_concurrent_streams 128;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    ssl_certificate $WORK/pki/cert.pem;
    ssl_certificate_key $WORK/pki/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    server {
        listen 127.0.0.1:$PORT ssl http2 backlog=65535;
        location / { default_type text/plain; return 200 "ok"; }
    }
    # The handshake mode's server resumes nothing, so every generator pays a full handshake
    # per connection whatever its own session cache does.
    server {
        listen 127.0.0.1:$PORT_FULL ssl backlog=65535;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { default_type text/plain; return 200 "ok"; }
    }
}
EOF
taskset -c "$SERVER_CORE" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
PIDS+=("$!")
URL="https://127.0.0.1:$PORT/"
URL_FULL="https://127.0.0.1:$PORT_FULL/"
for _ in $(seq 1 100); do
    curl -fsSk --max-time 1 "$URL" >/dev/null 2>&1 && break
    sleep 0.05
done
say "nginx (TLS) at $URL (core $SERVER_CORE); generators on core $GEN_CORE; ${DURATION}s x $ROUNDS rounds"

gen() { taskset -c "$GEN_CORE" /usr/bin/time -f '%U %S %M' -o "$WORK/time" "$@"; }

# stampede_scenario PATH USERS RUN_TIME TARGET_EXTRA LOAD_EXTRA [TLS_EXTRA]
stampede_scenario() {
    cat >"$1" <<EOF
name = "bench-https"
run_time = "$3"
report_interval = "1s"
stop_timeout = "5s"

[[target]]
name = "nginx"
url = "$URL"
arch = "amd64"
${4:-}

[target.tls]
ca = "$WORK/pki/ca.pem"
${6:-}

[[request]]
name = "get"
path = "/"
timeout = "10s"

[load]
users = $2
${5:-}
EOF
}

run_stampede_with() { # run_stampede_with SCENARIO: prints "REQUESTS CPU"
    rm -f "$WORK/summary.json"
    gen timeout $((DURATION + 60)) "$STAMPEDE" run "$1" --headless --local-workers 1 \
        --worker-threads 1 --summary "$WORK/summary.json" --status-every 1h \
        >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }
    local n errors
    n=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["totals"]["requests"])' \
        "$WORK/summary.json")
    errors=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; print(sum(t["errors"].values()) + t["status"]["5xx"])' \
        "$WORK/summary.json")
    ((errors == 0)) || say "stampede: $errors errors"
    echo "$n $(cpu_of "$WORK/time")"
}

wrk_count() { awk '/requests in/ {print $1}' "$WORK/out"; }

# --- h1: HTTPS keep-alive
run_h1_wrk() {
    gen timeout $((DURATION + 30)) wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL" >"$WORK/out"
    echo "$(wrk_count) $(cpu_of "$WORK/time")"
}
run_h1_stampede() {
    stampede_scenario "$WORK/h1.toml" "$CONNECTIONS" "${DURATION}s" "" 'wait = { kind = "none" }'
    run_stampede_with "$WORK/h1.toml"
}

# --- h2: HTTP/2 over TLS
run_h2_h2load() {
    gen timeout $((DURATION + 30)) h2load -t1 -c"$H2_CONNECTIONS" -m"$H2_STREAMS" \
        -D "$DURATION" "$URL" >"$WORK/out" 2>&1
    local n
    n=$(awk '/^requests:/ {print $8}' "$WORK/out")
    echo "$n $(cpu_of "$WORK/time")"
}
run_h2_oha() {
    gen timeout $((DURATION + 30)) "$OHA" -z "${DURATION}s" --http2 -c "$H2_CONNECTIONS" \
        -p "$H2_STREAMS" --insecure --no-tui --output-format json "$URL" >"$WORK/out"
    local n
    n=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
print(sum(s["statusCodeDistribution"].values()))' "$WORK/out")
    echo "$n $(cpu_of "$WORK/time")"
}
run_h2_stampede() {
    stampede_scenario "$WORK/h2.toml" $((H2_CONNECTIONS * H2_STREAMS)) "${DURATION}s" \
        "http = \"2\"
connections = $H2_CONNECTIONS
streams_per_connection = $H2_STREAMS" 'wait = { kind = "none" }'
    run_stampede_with "$WORK/h2.toml"
}

# --- handshake: a full handshake per request
run_handshake_wrk() {
    gen timeout $((DURATION + 30)) wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
        -H "Connection: close" "$URL_FULL" >"$WORK/out"
    echo "$(wrk_count) $(cpu_of "$WORK/time")"
}
run_handshake_stampede() {
    stampede_scenario "$WORK/hs.toml" "$CONNECTIONS" "${DURATION}s" "" \
        'wait = { kind = "none" }
connection = "close"' "resumption = false"
    sed -i "s|$URL|$URL_FULL|" "$WORK/hs.toml"
    run_stampede_with "$WORK/hs.toml"
}

declare -A TOOLS=([h1]="wrk stampede" [h2]="h2load oha stampede" [handshake]="wrk stampede")

report_mode() { # report_mode MODE
    local m=$1 t s
    printf '%s: nginx 1 worker on core %s; generators on core %s, one thread; %ss, median of %s\n' \
        "$m" "$SERVER_CORE" "$GEN_CORE" "$DURATION" "$ROUNDS"
    printf '  %-9s %10s %7s %11s %15s\n' tool requests cpu_s req/cpu_s "spread(min-max)"
    for t in ${TOOLS[$m]}; do
        printf '  %-9s %10s %7s %11s %15s\n' "$t" "$(median <"$WORK/$m.$t.requests")" \
            "$(median <"$WORK/$m.$t.cpu")" "$(median <"$WORK/$m.$t.rate")" \
            "$(sort -g "$WORK/$m.$t.rate" | awk 'NR==1 {a=$1} {b=$1} END {printf "%d-%d", a, b}')"
    done
    s=$(median <"$WORK/$m.stampede.rate")
    for t in ${TOOLS[$m]}; do
        [[ $t == stampede ]] && continue
        awk -v s="$s" -v o="$(median <"$WORK/$m.$t.rate")" -v t="$t" -v m="$m" 'BEGIN {
            goal = (m == "h1" && t == "wrk") ? "   (goal >= 1.0)" : (t == "h2load") ? "   (goal >= 0.8)" : (t == "oha") ? "   (goal >= 1.0)" : ""
            printf "  stampede / %-7s %8.2fx%s\n", t, s / o, goal }'
    done
}

echo "https benchmarks ($(describe_machine))"
for m in $MODES; do
    [[ $m == idle ]] && continue
    for round in $(seq 1 "$ROUNDS"); do
        for t in ${TOOLS[$m]}; do
            read -r n cpu < <("run_${m}_$t")
            rate=$(awk -v n="$n" -v c="$cpu" 'BEGIN {printf "%.0f", (c > 0) ? n / c : 0}')
            say "$m round $round: $t $n requests, $cpu CPU-s, $rate req/CPU-s"
            echo "$n" >>"$WORK/$m.$t.requests"
            echo "$cpu" >>"$WORK/$m.$t.cpu"
            echo "$rate" >>"$WORK/$m.$t.rate"
        done
    done
    report_mode "$m"
done

if [[ " $MODES " == *" idle "* ]]; then
    # idle_rss USERS: RSS (KiB) of a run whose USERS each hold an idle TLS connection.
    idle_rss() {
        local users=$1 run_time pid rss
        run_time=$((users / 1000 + 20))
        stampede_scenario "$WORK/idle.toml" "$users" "${run_time}s" "" \
            "spawn_rate = 2000
wait = { kind = \"constant\", duration = \"60s\" }"
        taskset -c "$GEN_CORE" "$STAMPEDE" run "$WORK/idle.toml" --headless --local-workers 1 \
            --worker-threads 1 --summary "$WORK/idle.json" --status-every 1h \
            >"$WORK/out" 2>"$WORK/err" &
        pid=$!
        PIDS+=("$pid")
        sleep $((run_time - 3))
        rss=$(rss_kib "$pid")
        wait "$pid" || { tail -5 "$WORK/err" >&2; return 1; }
        echo "$rss"
    }
    base=$(idle_rss "$BASE")
    many=$(idle_rss "$IDLE_USERS")
    requests=$(python3 -c 'import json; print(json.load(open("'"$WORK"'/idle.json"))["totals"]["requests"])')
    awk -v b="$base" -v r="$many" -v n="$IDLE_USERS" -v m="$BASE" -v q="$requests" 'BEGIN {
        printf "idle TLS users: %d users: RSS %.1f MiB (%d users: %.1f MiB) -> %.1f KiB per idle TLS user (goal <= 32); %d requests\n",
            n, r / 1024, m, b / 1024, (r - b) / (n - m), q }'
fi
