#!/usr/bin/env bash
# The watch pass's process scan before and after it kept state between passes, side by side
# in one run: N sleepers (default 5000) in their own process group, killed on exit whatever
# happens, and doctor's diagnosis as the agent runs it (bounded reads, the sleepers one pile)
# on the real /proc — `full` (every pass reads every stat and command line: before) and
# `incremental` (command lines kept by pid and start time: after). Each run does PASSES
# passes; the example prints CPU per pass, hyperfine the runs' user and system time.
# Figures go to docs/agent.md.
# It runs in a pid namespace of its own with its own /proc (NS=0: on the host's), so the
# machine's other processes and their file locks do not enter the figures: a write-held
# package-database lock anywhere on the machine makes every pass read the descriptors of every
# pile member (the incident's cost, not the scan's). BEFORE= another build of the example
# (e.g. the commit before) runs beside it in the same hyperfine.
#   bench/watch-scan.sh               # 5000 sleepers, 30 passes a run
#   N=2000 PASSES=50 bench/watch-scan.sh
#   BEFORE=/tmp/watch_cost-old bench/watch-scan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${NS:-1}" = 1 ] && [ -z "${WATCH_SCAN_NS:-}" ]; then
  exec unshare --pid --fork --mount-proc env WATCH_SCAN_NS=1 "$0" "$@"
fi
N=${N:-5000}
PASSES=${PASSES:-30}

cargo build --release -p hostready-doctor --example watch_cost --quiet
bin=$PWD/target/release/examples/watch_cost
. bench/sleepers.sh
trap stop_sleepers EXIT INT TERM
start_sleepers "$N"

"$bin" full "$PASSES"
"$bin" incremental "$PASSES"
before=()
if [ -n "${BEFORE:-}" ]; then
  echo -n "before: " && "$BEFORE" incremental "$PASSES"
  before=("$BEFORE incremental $PASSES")
fi
hyperfine --warmup 1 --runs "${RUNS:-5}" -N \
  "$bin full $PASSES" "$bin incremental $PASSES" "${before[@]}"
