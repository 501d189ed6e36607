#!/usr/bin/env bash
# The watch pass against the kernel's floor, side by side in one run. On this shared VM the
# kernel's cost of reading procfs moves by a third from one half hour to the next, so a pass's
# figure alone says little; beside it, in alternating rounds on the same sleepers, is what any
# pass must cost at the least (`procfs-cost floor`: list the pids, open, read and close each
# one's `stat` through a kept directory, nothing else). N sleepers (default 5000) in a pid
# namespace of their own (NS=0: on the host's), killed on exit whatever happens; each round
# runs the floor (20 passes), then doctor's `watch_cost` example (PASSES incremental passes,
# the agent's diagnosis), then BEFORE= (another build of the example) if given. Prints every
# round and the medians: the pass, the floor, and the pass less the floor in each round (what
# hostready's own code adds). Figures go to docs/agent.md.
#   bench/watch-floor.sh                   # 5000 sleepers, 10 rounds of 40 passes
#   ROUNDS=20 bench/watch-floor.sh
#   BEFORE=/tmp/watch_cost-old bench/watch-floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${NS:-1}" = 1 ] && [ -z "${WATCH_FLOOR_NS:-}" ]; then
  exec unshare --pid --fork --mount-proc env WATCH_FLOOR_NS=1 "$0" "$@"
fi
N=${N:-5000}
ROUNDS=${ROUNDS:-10}
PASSES=${PASSES:-40}

cargo build --release -p hostready-doctor --example watch_cost --quiet
bin=$PWD/target/release/examples/watch_cost
floor=$PWD/target/procfs-cost
cc -O2 -o "$floor" bench/procfs-cost.c
out=$(mktemp)
. bench/sleepers.sh
cleanup() {
  stop_sleepers
  rm -f "$out"
}
trap cleanup EXIT INT TERM
start_sleepers "$N"

# "ms CPU per pass" of the example's line, "ms CPU per pass (median" of the floor's.
ms() { sed -n 's/^[a-z]*: \([0-9.]*\) ms CPU per pass.*/\1/p'; }
for r in $(seq "$ROUNDS"); do
  f=$("$floor" floor 20 | ms)
  p=$("$bin" incremental "$PASSES" | ms)
  line="round $r: floor $f pass $p"
  echo "floor $f" >>"$out"
  echo "pass $p" >>"$out"
  echo "over $(awk -v p="$p" -v f="$f" 'BEGIN {printf "%.1f", p - f}')" >>"$out"
  if [ -n "${BEFORE:-}" ]; then
    b=$("$BEFORE" incremental "$PASSES" | ms)
    echo "before $b" >>"$out"
    line="$line before $b"
  fi
  echo "$line"
done
median() { grep "^$1 " "$out" | cut -d' ' -f2 | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
before=
if [ -n "${BEFORE:-}" ]; then before=", before $(median before) ms"; fi
echo "median of $ROUNDS rounds: pass $(median pass) ms, floor $(median floor) ms, pass less floor (each round's) $(median over) ms$before"
