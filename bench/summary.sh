#!/usr/bin/env bash
# Summary cost: the JSON summary of a one-hour run with 4 targets (3,600 intervals) must be built
# and written in under 1 s and take under 10 MB. Run on demand:
#
#   bash bench/summary.sh
#
# Runs master/examples/summary_cost.rs (release), which builds the aggregate from synthetic
# reports, then times Summary::build + Summary::write; /usr/bin/time adds the peak memory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_time
build_release -p stampede-master --example summary_cost
echo "summary cost ($(describe_machine))"
/usr/bin/time -f '  peak RSS of the whole bench process %M KiB' \
    "$RELEASE/examples/summary_cost" "$WORK/summary.json" 2>&1 | sed 's/^summary/  summary/'
