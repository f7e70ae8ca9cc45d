# Shared helpers of the bench/ scripts (sourced, not run). Every helper is bounded in time and
# only ever talks to 127.0.0.1.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_CACHE=${BENCH_CACHE:-$HOME/.cache/stampede-bench}
WORK=$(mktemp -d)
PIDS=()

say() { printf '%s\n' "$*" >&2; }

cleanup() {
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# Cores: the server on SERVER_CORE, the generator on GEN_CORE (both 0 on a 1-core machine).
if (($(nproc) >= 2)); then SERVER_CORE=0 GEN_CORE=1; else SERVER_CORE=0 GEN_CORE=0; fi

apt_install() { # apt_install COMMAND PACKAGE
    command -v "$1" >/dev/null && return 0
    say "installing $2 (apt-get)"
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$2" >/dev/null
}

need_time() { [[ -x /usr/bin/time ]] || apt_install /usr/bin/time time; }
need_nginx() { apt_install nginx nginx-light; }
need_wrk() { apt_install wrk wrk; }

need_locust() {
    python3 -c 'import locust' 2>/dev/null && return 0
    say "installing locust (pip)"
    timeout 900 python3 -m pip install --quiet locust
}

# oha from crates.io, built once into the cache.
OHA=$BENCH_CACHE/bin/oha
need_oha() {
    [[ -x $OHA ]] && return 0
    say "installing oha (cargo install, into $BENCH_CACHE; a few minutes)"
    timeout 1800 cargo install oha --locked --quiet --root "$BENCH_CACHE"
}

# Where release binaries land (cargo honours CARGO_TARGET_DIR).
RELEASE=${CARGO_TARGET_DIR:-$ROOT/target}/release

build_release() { # build_release PACKAGE... (feature flags may follow --)
    say "building (release): $*"
    (cd "$ROOT" && timeout 1800 cargo build --release --quiet "$@")
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_nginx PORT WORKERS CONNECTIONS: nginx-light answering "ok" with keep-alive, one worker
# process per WORKERS, pinned to SERVER_CORE; its pid in NGINX_PID.
start_nginx() {
    local port=$1 workers=${2:-1} conns=${3:-1024} dir=$WORK/nginx-$1
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $workers;
worker_rlimit_nofile $((conns + 64));
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections $conns; multi_accept on; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port backlog=65535;
        location / { default_type text/plain; return 200 "ok"; }
    }
}
EOF
    taskset -c "$SERVER_CORE" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    for _ in $(seq 1 100); do
        curl -fsS --max-time 1 "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    say "nginx did not start"; cat "$dir/logs/error.log" >&2; return 1
}

# cpu_of TIMEFILE: user+sys seconds from /usr/bin/time -f '%U %S %M'.
cpu_of() { awk 'END {print $1 + $2}' "$1"; }
maxrss_kib_of() { awk 'END {print $3}' "$1"; }

# rss_kib PID: resident set of a process, KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# A scenario for stampede against one URL: scenario_file PATH URL USERS RUN_TIME [EXTRA_LOAD_TOML]
scenario_file() {
    cat >"$1" <<EOF
name = "bench"
run_time = "$4"
report_interval = "1s"
stop_timeout = "5s"

[[target]]
name = "nginx"
url = "$2"
arch = "amd64"

[[request]]
name = "get"
path = "/"
timeout = "10s"

[load]
users = $3
$5
EOF
}

# Runs once per bench: the machine and the commit, for the results table.
describe_machine() {
    local commit
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if ! git -C "$ROOT" diff --quiet 2>/dev/null; then commit="$commit+dirty"; fi
    printf '%s, commit %s, %s cores (%s), %s, load average %s\n' \
        "$(date -u +%Y-%m-%dT%H:%MZ)" "$commit" "$(nproc)" \
        "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" "$(uname -r)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
}
