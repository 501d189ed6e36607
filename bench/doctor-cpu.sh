#!/usr/bin/env bash
# Compares the CPU time of two `hostready doctor` builds on a host with many processes, in
# interleaved rounds (before, after, before, ...), so that a loaded machine weighs on both alike.
# N sleepers (default 5000) in their own process group, killed on exit whatever happens.
#   BASELINE=/tmp/hostready-old bench/doctor-cpu.sh            # against this tree's release build
#   BASELINE=/tmp/old AFTER=/tmp/new ROUNDS=5 bench/doctor-cpu.sh
# Prints one line per round, build and case: task-clock (user + system, all threads) and user
# time, each the mean of 10 runs (perf stat -r 10). Figures go to docs/bench-doctor.md.
set -uo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
ROUNDS=${ROUNDS:-5}
[ -n "${BASELINE:-}" ] || { echo "bench: set BASELINE to the older binary" >&2; exit 2; }
command -v perf >/dev/null || { echo "bench: perf missing (scripts/setup)" >&2; exit 2; }
if [ -z "${AFTER:-}" ]; then
  cargo build --release -p hostready --quiet || exit 2
  AFTER=$PWD/target/release/hostready
fi

. bench/sleepers.sh
trap stop_sleepers EXIT INT TERM
start_sleepers "$N" || exit 2

# The exit code is 1 once the sleepers are flagged: perf's status is not checked.
for round in $(seq "$ROUNDS"); do
  for build in "$BASELINE" "$AFTER"; do
    for age in 0 1h; do
      figures=$(perf stat -x, -r 10 -e task-clock,user_time "$build" doctor --pile-min-age "$age" -o json 2>&1 >/dev/null |
        awk -F, '$3=="task-clock"{printf "cpu %.1f ms  ", $1} $3=="user_time"{printf "user %.1f ms", $1/1e6}')
      echo "round $round  $build  --pile-min-age $age  $figures"
    done
  done
done
