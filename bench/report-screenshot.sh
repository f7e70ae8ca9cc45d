#!/usr/bin/env bash
# Renders a stampede HTML report in headless Chromium: a screenshot of the page as a browser
# shows it, and the page printed to PDF (turned into PNG pages when pdftoppm is there), to look
# at what a person sees on screen and on paper.
#
#   bench/report-screenshot.sh                 # make a report first: a short capacity search
#                                              # against two local workload servers, one with
#                                              # twice the compute slots of the other
#   bench/report-screenshot.sh REPORT.html     # render an existing report
#
# Output in $OUT (default target/report-shots): report.png, report.pdf, report-print-N.png.
# Needs Debian's chromium (apt-get install -y chromium); poppler-utils for the PDF pages.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-target/report-shots}
mkdir -p "$OUT"
report=${1:-}

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
    echo "SKIPPED: chromium is not installed (apt-get install -y chromium)"
    exit 0
fi

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Starts a workload server on a free loopback port; prints its address.
start_server() {
    local arch=$1 slots=$2 log="$OUT/server-$1.log"
    target/debug/stampede-workload-server --listen 127.0.0.1:0 --arch-label "$arch" \
        --matrix-dim 64 --max-inflight "$slots" --max-queue 2 >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        addr=$(grep -o 'addr=127\.0\.0\.1:[0-9]*' "$log" | head -1 | cut -d= -f2 || true)
        [ -n "$addr" ] && { echo "$addr"; return; }
        sleep 0.1
    done
    echo "the $arch workload server did not start: $(cat "$log")" >&2
    exit 1
}

if [ -z "$report" ]; then
    cargo build -q -p stampede-master -p stampede-workload-server
    arm=$(start_server arm64 2)
    amd=$(start_server amd64 1)
    echo "workload servers: arm64 (2 slots) on $arm, amd64 (1 slot) on $amd"
    target/debug/stampede-master run scenarios/capacity.toml --headless \
        --set "target[0].url=http://$arm/arm" --set "target[1].url=http://$amd/amd" \
        --set "request[0].path=/runtime" --set report_interval=500ms \
        --set capacity.start=1 --set capacity.step=2 --set capacity.hold=3s \
        --set capacity.settle=500ms --set load.wait.duration=0s --set cost.target_rps=10000 \
        --summary "$OUT/summary.json" --report "$OUT/report.html" --csv "$OUT/run" \
        --status-every 10s || test $? -eq 1
    report="$OUT/report.html"
fi

url="file://$(realpath "$report")"
profile=$(mktemp -d)
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --user-data-dir="$profile" --hide-scrollbars)
"$chromium" "${flags[@]}" --window-size=1100,5200 --screenshot="$OUT/report.png" "$url" 2>/dev/null
"$chromium" "${flags[@]}" --no-pdf-header-footer --print-to-pdf="$OUT/report.pdf" "$url" 2>/dev/null
rm -rf "$profile"
echo "screenshot: $OUT/report.png"
echo "printed:    $OUT/report.pdf"
if command -v pdftoppm >/dev/null; then
    pdftoppm -png -r 60 "$OUT/report.pdf" "$OUT/report-print"
    ls "$OUT"/report-print*.png
fi
