#!/usr/bin/env bash
# Seeds the fuzz corpora from this machine's procfs, os-release, kernel module lists and config,
# and the first 4 KiB of real binaries (not committed: corpora live in corpus/, which
# .gitignore keeps out). `root` takes structured input and starts from an empty corpus.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/os_release corpus/procfs corpus/kernel corpus/elf corpus/root corpus/signatures corpus/node_tables
for f in /etc/os-release /usr/lib/os-release; do
  if [ -r "$f" ]; then cp "$f" "corpus/os_release/$(echo "$f" | tr / _)"; fi
done
printf 'ID=sle-micro\nID_LIKE="suse opensuse"\nVARIANT_ID=\x27Micro\x27\nPRETTY_NAME="SUSE Linux \\"Micro\\" 6.0"\n# comment\n' >corpus/os_release/quoted
cat /proc/meminfo >corpus/procfs/meminfo
awk 'NF==0{exit} {print}' /proc/cpuinfo >corpus/procfs/cpuinfo
{ cat /proc/self/mountinfo; printf '\0/var/lib/longhorn'; } >corpus/procfs/mountinfo
printf '36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 shared:7 - ext3 /dev/root rw\n\0/mnt/my disk/x' >corpus/procfs/mountinfo_escaped
head -c 16384 /proc/net/unix >corpus/procfs/unix
cat /proc/self/stat >corpus/procfs/stat
printf '42 (a) b) c) S 1 42 42 0 -1 4194560\n' >corpus/procfs/stat_parens
R=$(uname -r)
if [ -r /proc/modules ]; then head -c 16384 /proc/modules >corpus/kernel/proc_modules; fi
for f in modules.builtin modules.dep; do
  if [ -r "/lib/modules/$R/$f" ]; then head -c 16384 "/lib/modules/$R/$f" >"corpus/kernel/$f"; fi
done
printf 'kernel/drivers/scsi/iscsi_tcp.ko.zst: kernel/drivers/scsi/libiscsi_tcp.ko.zst\nkernel/fs/nfs/nfsv4.ko.xz:\n' >corpus/kernel/modules_dep_sample
if [ -r "/boot/config-$R" ]; then
  { head -c 16384 "/boot/config-$R"; printf '\0CONFIG_MODULES'; } >corpus/kernel/config
elif [ -r /proc/config.gz ]; then
  { (zcat /proc/config.gz || true) | head -c 16384; printf '\0CONFIG_MODULES'; } >corpus/kernel/config
fi
printf 'CONFIG_NFS_V4=m\n# CONFIG_NFS_V2 is not set\nCONFIG_LOCALVERSION="-\xc3\xa9"\nCONFIG_NFS_V4=y\n\0CONFIG_NFS_V4' >corpus/kernel/config_sample
printf '%s\n5.15.0-94-generic\n6.8.0\n' "$R" >corpus/kernel/releases
for b in /bin/true /bin/sh /usr/bin/env /sbin/ldconfig /usr/lib/x86_64-linux-gnu/libc.so.6; do
  if [ -r "$b" ]; then head -c 4096 "$(readlink -f "$b")" >"corpus/elf/$(basename "$b")"; fi
done
printf '#!/usr/bin/env python3\nprint(1)\n' >corpus/elf/script
printf '#!/bin/sh -e\n' >corpus/elf/script_arg
true
# Device heads written by the real tools (scripts/setup installs them), and the node tables.
for t in ext4 xfs swap; do
  img="$(mktemp)"
  truncate -s 320M "$img"
  case $t in
    ext4) mkfs.ext4 -q -F "$img" ;;
    xfs) mkfs.xfs -q -f "$img" ;;
    swap) mkswap "$img" >/dev/null ;;
  esac
  head -c 266240 "$img" >"corpus/signatures/$t"
  rm -f "$img"
done
head -c 16384 /proc/net/unix >corpus/node_tables/unix
{ cat /proc/self/mountinfo; printf '\0/var/lib/longhorn'; } >corpus/node_tables/mountinfo
