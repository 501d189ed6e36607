# Sourced by the benches that need many processes: N sleepers (`sleep 900`) in one process group
# of their own (job control gives a background job its own group), so one kill takes them all;
# should the bench itself be killed with SIGKILL, they end within 15 minutes.
#   start_sleepers N    # returns once all N run (fails after 60 s without them); sets $sleepers_pgid
#   stop_sleepers       # SIGKILL to the group; safe to call twice or before start
sleepers_pgid=
start_sleepers() {
  local n=$1 running=0
  set -m
  bash -c "for i in \$(seq $n); do sleep 900 & done; wait" </dev/null >/dev/null 2>&1 &
  sleepers_pgid=$!
  set +m
  for _ in $(seq 600); do
    running=$(pgrep -c -g "$sleepers_pgid" sleep || true)
    [ "$running" -ge "$n" ] && break
    sleep 0.1
  done
  if [ "$running" -lt "$n" ]; then
    echo "bench: only $running of $n sleepers started within 60 s (a pid or memory limit?)" >&2
    return 1
  fi
  echo "bench: $n sleepers, $(ls /proc | grep -c '^[0-9]') pids, /proc/locks $(wc -l </proc/locks) lines, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
}
stop_sleepers() {
  if [ -n "$sleepers_pgid" ]; then
    kill -KILL -- "-$sleepers_pgid" 2>/dev/null || true
    wait "$sleepers_pgid" 2>/dev/null || true
    sleepers_pgid=
  fi
}
