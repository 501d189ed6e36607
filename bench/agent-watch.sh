#!/usr/bin/env bash
# Measures the agent's watch pass on a host with many processes: N sleepers (default 5000) in
# their own process group, killed on exit whatever happens, and a release agent watching the
# real /proc every second (`--watch-interval 1s`, checks once an hour) with no cluster to talk
# to (its kubeconfig points at a closed port: it keeps watching and retries the API, which
# costs next to nothing). Reports, from the agent's own /metrics: passes, the CPU time per pass
# (process_cpu_seconds_total over hostready_watch_passes_total, between two scrapes), the last
# pass's wall time, and the agent's resident memory; and, run in a cgroup-v1 memory cgroup of
# its own with the DaemonSet's limit (32Mi, as deploy/manifests/daemonset.yaml ships it;
# MEMCG=0: none), the cgroup's peak, kernel memory included (the kept process directories are
# charged there). Figures go to docs/agent.md.
#   bench/agent-watch.sh              # 5000 sleepers, 30 s of passes
#   N=2000 SECS=60 bench/agent-watch.sh
#   BIN=/tmp/hostready-agent-old bench/agent-watch.sh   # another build (no cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
SECS=${SECS:-30}

if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  cargo build --release -p hostready-agent --quiet
  bin=$PWD/target/release/hostready-agent
fi
out=$(mktemp -d)
. bench/sleepers.sh
agent=
cg=
if [ "${MEMCG:-1}" = 1 ]; then
  cg=/sys/fs/cgroup/memory/hostready-agent-watch-$$
  mkdir "$cg"
  echo $((32 << 20)) >"$cg/memory.limit_in_bytes"
fi
cleanup() {
  if [ -n "$agent" ]; then kill -TERM "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; fi
  stop_sleepers
  if [ -n "$cg" ]; then rmdir "$cg" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT INT TERM

cat >"$out/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
EOF
printf 'watch_interval: 1s\npile_min_age: 0s\n' >"$out/agent.yaml"

start_sleepers "$N"

# In the cgroup (when made) from its first instruction: the shell joins it and execs the agent.
CG=$cg sh -c '[ -z "$CG" ] || echo $$ >"$CG/cgroup.procs"; exec "$@"' agent \
  "$bin" --node-name bench --root / --proc /proc --kubeconfig "$out/kubeconfig" \
  --config "$out/agent.yaml" --interval 1h --metrics-addr 127.0.0.1:19808 \
  2>"$out/agent.log" &
agent=$!
scrape() { curl -s http://127.0.0.1:19808/metrics; }
value() { awk -v n="$1" '$1 == n { print $2 }'; }
# After the first check cycle (spread over up to 30 s after start), so the window holds passes only.
until scrape 2>/dev/null | grep -q '^hostready_check_cycles_total [1-9]'; do sleep 0.5; done
m0=$(scrape)
sleep "$SECS"
m1=$(scrape)
p0=$(value hostready_watch_passes_total <<<"$m0"); p1=$(value hostready_watch_passes_total <<<"$m1")
c0=$(value process_cpu_seconds_total <<<"$m0"); c1=$(value process_cpu_seconds_total <<<"$m1")
last=$(value hostready_watch_duration_seconds <<<"$m1")
rss=$(value process_resident_memory_bytes <<<"$m1")
piles=$(grep -c '^hostready_pileup_processes{' <<<"$m1" || true)
awk -v p0="$p0" -v p1="$p1" -v c0="$c0" -v c1="$c1" -v last="$last" -v rss="$rss" -v piles="$piles" -v n="$N" 'BEGIN {
  printf "watch pass, %d sleepers: %d passes in the window, CPU %.1f ms per pass, last pass %.1f ms wall, agent RSS %.1f MiB, %d pile series\n",
    n, p1 - p0, (c1 - c0) * 1000 / (p1 - p0), last * 1000, rss / 1048576, piles
}'
if [ -n "$cg" ]; then
  awk -v peak="$(cat "$cg/memory.max_usage_in_bytes")" -v kmem="$(cat "$cg/memory.kmem.max_usage_in_bytes" 2>/dev/null || echo 0)" \
    -v fails="$(cat "$cg/memory.failcnt")" 'BEGIN {
    printf "agent cgroup (limit 32 MiB): peak %.1f MiB, kernel memory peak %.1f MiB, %d failed charges\n", peak / 1048576, kmem / 1048576, fails
  }'
fi
