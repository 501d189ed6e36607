#!/usr/bin/env bash
# Benchmarks `hostready doctor` on a host with many processes: N sleepers (default 5000) in
# their own process group, killed on exit whatever happens. Figures go to docs/bench-doctor.md.
#   bench/doctor.sh            # 5000 sleepers
#   N=2000 RUNS=20 bench/doctor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
RUNS=${RUNS:-30}
command -v hyperfine >/dev/null || { echo "bench: hyperfine missing (scripts/setup)" >&2; exit 2; }

cargo build --release -p hostready --quiet
bin=$PWD/target/release/hostready
out=$(mktemp -d)

pgid=
cleanup() {
  if [ -n "$pgid" ]; then kill -KILL -- "-$pgid" 2>/dev/null || true; wait "$pgid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT INT TERM

base=$(ls /proc | grep -c '^[0-9]')
echo "bench: baseline, $base pids (threads and kernel threads included)" >&2
# Exit code 1 (something wrong) is expected once the sleepers are flagged: -i.
hyperfine -N -i --warmup 3 --runs "$RUNS" --export-markdown "$out/base.md" \
  "$bin doctor --pile-min-age 0 -o json" >&2

# The sleepers: one process group (job control gives a background job its own), so one kill
# takes them all.
set -m
bash -c "for i in \$(seq $N); do sleep 3600 & done; wait" </dev/null >/dev/null 2>&1 &
pgid=$!
set +m
for _ in $(seq 600); do
  [ "$(pgrep -c -g "$pgid" sleep || true)" -ge "$N" ] && break
  sleep 0.1
done
now=$(ls /proc | grep -c '^[0-9]')
echo "bench: $now pids with $N sleepers" >&2

# Flagged: the sleepers are one pile-up, so their private memory is read (smaps_rollup each).
hyperfine -N -i --warmup 3 --runs "$RUNS" --export-markdown "$out/flagged.md" \
  "$bin doctor --pile-min-age 0 -o json" >&2
# Not flagged (younger than the default 60 s): one stat + cmdline + exe per process only.
hyperfine -N -i --warmup 3 --runs "$RUNS" --export-markdown "$out/plain.md" \
  "$bin doctor --pile-min-age 1h -o json" >&2

# What doctor does to the host: no process started, no lock taken (the one execve is
# strace starting doctor; fcntl calls other than F_SETLK*/F_OFD_SETLK* are F_GETFL).
if command -v strace >/dev/null; then
  strace -f -qq -o "$out/trace" -e trace=execve,clone,clone3,fork,vfork,flock,fcntl \
    "$bin" doctor --pile-min-age 0 -o json >/dev/null || true
  {
    echo "execve: $(grep -c 'execve(' "$out/trace")"
    echo "clone/fork: $(grep -cE '(clone3?|v?fork)\(' "$out/trace")"
    echo "flock: $(grep -c 'flock(' "$out/trace")"
    echo "fcntl lock commands: $(grep -cE 'F_(OFD_)?SETLKW?' "$out/trace")"
  } >"$out/strace.txt"
fi
maxrss=$( { /usr/bin/time -f '%M' "$bin" doctor --pile-min-age 0 -o json >/dev/null; } 2>&1 | tail -1 || true)

echo
echo "## $(date -u +%F) — $(nproc) cores, kernel $(uname -r), $N sleepers"
echo
echo "baseline ($base pids):"; cat "$out/base.md"; echo
echo "$now pids, sleepers flagged as a pile-up (statm read for each: piles above 256 members):"; cat "$out/flagged.md"; echo
echo "$now pids, nothing flagged:"; cat "$out/plain.md"; echo
echo "max RSS of one run with $now pids: ${maxrss} kB"
[ -s "$out/strace.txt" ] && { echo; echo '```'; cat "$out/strace.txt"; echo '```'; }
