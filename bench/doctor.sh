#!/usr/bin/env bash
# Benchmarks `hostready doctor` on a host with many processes: N sleepers (default 5000) in
# their own process group, killed on exit whatever happens. Figures go to docs/bench-doctor.md.
#   bench/doctor.sh            # 5000 sleepers
#   N=2000 RUNS=20 bench/doctor.sh
#   BASELINE=/tmp/hostready-old bench/doctor.sh   # also time an older build, in the same runs
# The machine may be shared: wall times depend on its load, so the script also reports what
# does less: system calls (strace -c) and CPU time (perf stat task-clock).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
RUNS=${RUNS:-30}
command -v hyperfine >/dev/null || { echo "bench: hyperfine missing (scripts/setup)" >&2; exit 2; }

cargo build --release -p hostready --quiet
bin=$PWD/target/release/hostready
out=$(mktemp -d)

base_cmd=()
[ -n "${BASELINE:-}" ] && base_cmd=("$BASELINE doctor --pile-min-age 0 -o json")
base_plain=()
[ -n "${BASELINE:-}" ] && base_plain=("$BASELINE doctor --pile-min-age 1h -o json")

. bench/sleepers.sh
cleanup() {
  stop_sleepers
  rm -rf "$out"
}
trap cleanup EXIT INT TERM

base=$(ls /proc | grep -c '^[0-9]')
echo "bench: baseline, $base pids (threads and kernel threads included)" >&2
# Exit code 1 (something wrong) is expected once the sleepers are flagged: -i.
hyperfine -N -i --warmup 3 --runs "$RUNS" --export-markdown "$out/base.md" \
  "$bin doctor --pile-min-age 0 -o json" >&2

start_sleepers "$N"
now=$(ls /proc | grep -c '^[0-9]')
echo "bench: $now pids with $N sleepers" >&2

# Flagged: the sleepers are one pile-up, so their memory is read (statm of a 256 sample).
hyperfine -N -i --warmup 3 --runs "$RUNS" --export-markdown "$out/flagged.md" \
  "$bin doctor --pile-min-age 0 -o json" "${base_cmd[@]}" >&2
# Not flagged (younger than 1 h): stat of every process, cmdline of the sleepers.
hyperfine -N -i --warmup 3 --runs "$RUNS" --export-markdown "$out/plain.md" \
  "$bin doctor --pile-min-age 1h -o json" "${base_plain[@]}" >&2

# What doctor does to the host: no process started, no lock taken (the one execve is
# strace starting doctor; a clone with CLONE_THREAD is one of doctor's two scan threads;
# fcntl calls other than F_SETLK*/F_OFD_SETLK* are F_GETFL).
if command -v strace >/dev/null; then
  strace -f -qq -o "$out/trace" -e trace=execve,clone,clone3,fork,vfork,flock,fcntl \
    "$bin" doctor --pile-min-age 0 -o json >/dev/null || true
  {
    echo "execve: $(grep -c 'execve(' "$out/trace")"
    echo "processes started (fork, vfork, clone without CLONE_THREAD): $(grep -E '(clone3?|v?fork)\(' "$out/trace" | grep -vc CLONE_THREAD || true)"
    echo "threads started: $(grep -E 'clone3?\(' "$out/trace" | grep -c CLONE_THREAD || true)"
    echo "flock: $(grep -c 'flock(' "$out/trace")"
    echo "fcntl lock commands: $(grep -cE 'F_(OFD_)?SETLKW?' "$out/trace")"
  } >"$out/strace.txt"
  # System calls by kind, flagged case (all threads).
  strace -c -f -o "$out/count.txt" "$bin" doctor --pile-min-age 0 -o json >/dev/null || true
  for b in ${BASELINE:-}; do
    strace -c -f -o "$out/count-base.txt" "$b" doctor --pile-min-age 0 -o json >/dev/null || true
  done
fi
# CPU time (user + system, both threads), flagged case: less dependent on the machine's load
# than wall time. (This VM has no hardware counters for `perf stat -e instructions`, and
# valgrind 3.19 has no openat2, so under callgrind doctor would read through Root's walker.)
if command -v perf >/dev/null; then
  cpu() { perf stat -x, -r 10 -e task-clock "$@" doctor --pile-min-age 0 -o json 2>&1 >/dev/null | cut -d, -f1; }
  cpu "$bin" >"$out/cpu.txt" || true
  [ -n "${BASELINE:-}" ] && { cpu "$BASELINE" >"$out/cpu-base.txt" || true; }
fi
maxrss=$( { /usr/bin/time -f '%M' "$bin" doctor --pile-min-age 0 -o json >/dev/null; } 2>&1 | tail -1 || true)

echo
echo "## $(date -u +%F) — $(nproc) cores, kernel $(uname -r), $N sleepers"
echo
echo "baseline ($base pids):"; cat "$out/base.md"; echo
echo "$now pids, sleepers flagged as a pile-up:"; cat "$out/flagged.md"; echo
echo "$now pids, nothing flagged:"; cat "$out/plain.md"; echo
echo "max RSS of one run with $now pids: ${maxrss} kB"
[ -s "$out/strace.txt" ] && { echo; echo '```'; cat "$out/strace.txt"; echo '```'; }
if [ -s "$out/count.txt" ]; then
  echo; echo "system calls, flagged case (strace -c -f; top 6 and total):"; echo '```'
  head -8 "$out/count.txt" | tail -6; tail -1 "$out/count.txt"; echo '```'
fi
if [ -s "$out/count-base.txt" ]; then
  echo; echo "system calls of the baseline build, flagged case:"; echo '```'
  head -8 "$out/count-base.txt" | tail -6; tail -1 "$out/count-base.txt"; echo '```'
fi
[ -s "$out/cpu.txt" ] && echo "CPU time (task-clock, mean of 10), flagged case: $(cat "$out/cpu.txt") ms"
[ -s "$out/cpu-base.txt" ] && echo "CPU time of the baseline build: $(cat "$out/cpu-base.txt") ms"
true
