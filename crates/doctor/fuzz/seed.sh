#!/usr/bin/env bash
# Seeds the fuzz corpora from this machine's procfs and the log shapes of the incident (not
# committed: corpora live in corpus/, which .gitignore keeps out).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/locks corpus/stat corpus/memory corpus/signatures
cp /proc/locks corpus/locks/host
printf '1: POSIX  ADVISORY  WRITE 6384 fe:00:9978253 1073741826 1073742335\n2: POSIX  ADVISORY  WRITE 6384 fe:00:9978253 1073741824 1073741824\n3: FLOCK  ADVISORY  WRITE 700 00:2e:55 0 EOF\n3: -> FLOCK  ADVISORY  WRITE 701 00:2e:55 0 EOF\n3:  -> -> FLOCK  ADVISORY  WRITE 702 00:2e:55 0 EOF\n4: OFDLCK ADVISORY  READ  -1 00:06:1234 0 EOF\n' >corpus/locks/sqlite
for p in 1 self; do
  { cat /proc/$p/stat; printf '\0\0'; cat /proc/$p/cmdline; } >corpus/stat/$p || true
done
cat /proc/self/statm >corpus/stat/statm
cat /proc/stat >corpus/stat/procstat
cat /proc/self/smaps_rollup >corpus/memory/smaps_rollup
cat /proc/self/status >corpus/memory/status
cat /proc/meminfo >corpus/memory/meminfo
cat /proc/pressure/memory >corpus/memory/psi 2>/dev/null || true
cat >corpus/signatures/longhorn <<'LOG'
time="2024-12-18T09:01:02Z" level=error msg="Failed to check package installed" error="timeout executing: nsenter [--mount=/host/proc/1/ns/mnt rpm -q iscsi-initiator-utils], output , stderr , : context deadline exceeded"
error: rpmdb: BDB0113 Thread/process 4711/140245 failed: BDB1507 Thread died in Berkeley DB library
error: db5 error(-30973) from dbenv->failchk: BDB0087 DB_RUNRECOVERY: Fatal error, run database recovery
Error: database disk image is malformed
error: can't create transaction lock on /var/lib/rpm/.rpm.lock (Resource temporarily unavailable)
LOG
