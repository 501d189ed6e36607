# Sourced by the watch benches: N sleepers (`sleep 900`) in one process group of their own (job
# control gives a background job its own group), and the way to kill them all.
#   start_sleepers N    # returns once all N are running; sets $sleepers_pgid
#   stop_sleepers       # SIGKILL to the group; safe to call twice or before start
sleepers_pgid=
start_sleepers() {
  local n=$1
  set -m
  bash -c "for i in \$(seq $n); do sleep 900 & done; wait" </dev/null >/dev/null 2>&1 &
  sleepers_pgid=$!
  set +m
  while [ "$(pgrep -c -g "$sleepers_pgid" sleep || true)" -lt "$n" ]; do sleep 0.5; done
  echo "bench: $n sleepers, $(ls /proc | grep -c '^[0-9]') pids, /proc/locks $(wc -l </proc/locks) lines" >&2
}
stop_sleepers() {
  if [ -n "$sleepers_pgid" ]; then
    kill -KILL -- "-$sleepers_pgid" 2>/dev/null || true
    wait "$sleepers_pgid" 2>/dev/null || true
    sleepers_pgid=
  fi
}
