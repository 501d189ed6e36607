#!/usr/bin/env bash
# hostready check (full longhorn profile, whole process) against the two ways Longhorn asked the
# same question, side by side in one hyperfine run:
#   (a) Longhorn >= 1.7.3: one `nsenter --mount=/proc/1/ns/mnt --net=/proc/1/ns/net sh -c
#       'command -v X'` per executable, four of them;
#   (b) Longhorn <= 1.7.2: one `rpm -q PKG` per package, four of them, on a real ~600-package
#       SQLite rpmdb written by Debian's rpm.
# Then strace proves hostready starts no process. Needs root (nsenter), hyperfine, strace, rpm.
#   bench/check.sh [RESULTS.md]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/dev/stdout}
cargo build --release -q -p hostready
bin=$PWD/target/release/hostready
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bench/make-rpmdb "$work/rpmroot" 600
debroot=$(scripts/debroot)
exes="iscsiadm mount.nfs cryptsetup dmsetup"
pkgs="iscsi-initiator-utils nfs-utils cryptsetup device-mapper"
nsenter4=""; for x in $exes; do nsenter4+="nsenter --mount=/proc/1/ns/mnt --net=/proc/1/ns/net sh -c 'command -v $x' >/dev/null; "; done
rpm4=""; for p in $pkgs; do rpm4+="rpm --root $work/rpmroot --dbpath /var/lib/rpm -q $p >/dev/null; "; done
# Each competitor runs its four calls inside one `sh -c`, so the shell's own start (measured as
# `sh -c true`) is shown too and can be subtracted.
hyperfine -N -i --warmup 5 --min-runs 30 --export-markdown "$work/table.md" --export-json "$work/runs.json" \
  -n "hostready check: longhorn profile, this machine (tools missing: failures explained from dpkg)" "$bin check -o json" \
  -n "hostready check: longhorn profile, Debian root with the tools installed" "$bin check -o json --root $debroot --proc /proc" \
  -n "hostready --version (hostready's own start and exit)" "$bin --version" \
  -n "sh -c true (baseline for the two below)" "sh -c true" \
  -n "(a) 4x nsenter sh -c 'command -v X'" "sh -c \"$nsenter4\"" \
  -n "(b) 4x rpm -q on a 600-package sqlite rpmdb" "sh -c \"$rpm4\"" >/dev/null || true
strace -f -qq -e trace=execve,fork,vfork,clone,clone3 -o "$work/trace" "$bin" check >/dev/null || true
insns() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | sed -n 's/.*refs: *//p'; }
{
  echo "### hostready check vs Longhorn's ways ($(date -u +%F), $(nproc) cores, kernel $(uname -r))"
  echo
  cat "$work/table.md"
  echo
  python3 - "$work/runs.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
h, ready, floor, base, a, b = (list(r.values())[i] for i in range(6))
print(f"hostready: {h*1e3:.2f} ms here, {ready*1e3:.2f} ms on the ready Debian root; (a) nsenter x4: {a*1e3:.2f} ms ({(a-base)*1e3:.2f} ms without the shell); (b) rpm -q x4: {b*1e3:.2f} ms ({(b-base)*1e3:.2f} ms without the shell).")
for name, t in (("this machine", h), ("ready root", ready)):
    print(f"- {name}: hostready takes {t/(a-base):.3f} of (a) (target <= 0.25) and {t/(b-base):.4f} of (b) (target <= 0.05); its checks alone (minus `hostready --version`) {(t-floor)/(a-base):.3f} of (a), {(t-floor)/(b-base):.4f} of (b).")
PY
  echo
  if command -v valgrind >/dev/null; then
    echo "Instructions (callgrind; load-independent; valgrind lacks openat2, so the rooted reads take the walker path):"
    echo "- hostready check, this machine: $(insns "$bin" check -o json)"
    echo "- hostready check, ready Debian root: $(insns "$bin" check -o json --root "$debroot" --proc /proc)"
    echo "- hostready --version: $(insns "$bin" --version)"
    echo "- one rpm -q: $(insns rpm --root "$work/rpmroot" --dbpath /var/lib/rpm -q nfs-utils)"
    echo
  fi
  echo "Processes started by \`hostready check\` (strace -f, execve/fork/clone): $(grep -cE 'execve|clone|fork' "$work/trace") syscalls, of which the only one is its own start:"
  echo '```'; cat "$work/trace"; echo '```'
} >"$out"
