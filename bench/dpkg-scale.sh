#!/usr/bin/env bash
# dpkg at scale: whole-process timing of `hostready pkg query/owner` against `dpkg -s/-S`
# (both with --admindir) on a large generated dpkg database, side by side in one hyperfine run
# each, plus every command's peak RSS at several database sizes.
#
# The database is this machine's /var/lib/dpkg/status repeated until it reaches SIZE MB: copy 0
# keeps the real names, copy N renames each package NAME-hrN, and every package that is not
# `not-installed` gets an info/ list naming /usr/share/hr/N/NAME (NAME:ARCH.list for
# Multi-Arch: same), the layout crates/cli/tests/dpkg_scale.rs builds.
# Needs: dpkg, hyperfine, perl, /usr/bin/time, taskset. Usage: bench/dpkg-scale.sh [SIZE_MB...]
# (default 50; the first size is timed, every size is measured for RSS). Results go to stdout
# and $OUT (markdown).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("${@:-50}")
OUT=${OUT:-target/bench-dpkg-scale}
mkdir -p "$OUT"
cargo build --release -p hostready --quiet
HR=${HR:-$PWD/target/release/hostready}

# Builds target/bench-dpkg-root-$1 (kept for later runs; REBUILD=1 makes a new one).
make_root() {
  local mb=$1 r=$PWD/target/bench-dpkg-root-$1
  if [ "${REBUILD:-0}" = 1 ] || [ ! -f "$r/var/lib/dpkg/status" ]; then
    rm -rf "$r"
    mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates" "$r/etc"
    : > "$r/var/lib/dpkg/available"
    echo 1 > "$r/var/lib/dpkg/info/format"
    printf 'ID=debian\nVERSION_ID="12"\n' > "$r/etc/os-release"
    perl -e '
      my ($admin, $target) = @ARGV;
      local $/ = "\n\n";
      open(my $in, "<", "/var/lib/dpkg/status") or die;
      my @st = grep { /\S/ && !/^Package: open-iscsi$/m } map { s/^\s+|\s+$//gr } <$in>;
      open(my $out, ">", "$admin/status") or die;
      my ($n, $copy) = (0, 0);
      while ($n < $target) {
        for my $s (@st) {
          my ($name) = $s =~ /^Package: (\S+)/ or die;
          my $new = $copy ? "$name-hr$copy" : $name;
          (my $t = $s) =~ s/^Package: \S+/Package: $new/;
          print $out "$t\n\n"; $n += length($t) + 2;
          next if $s =~ /^Status: .* not-installed$/m;
          my ($arch) = $s =~ /^Architecture: (\S+)/m;
          my $list = $s =~ /^Multi-Arch: same$/m ? "$new:$arch" : $new;
          open(my $l, ">", "$admin/info/$list.list") or die;
          print $l "/.\n/usr\n/usr/share\n/usr/share/hr/$copy\n/usr/share/hr/$copy/$new\n";
        }
        $copy++;
      }
      print STDERR "copies: $copy\n";
    ' "$r/var/lib/dpkg" $((mb << 20))
  fi
  echo "$r"
}

R=$(make_root "${SIZES[0]}")
A=$R/var/lib/dpkg
echo "status: $(du -h "$A/status" | cut -f1), $(grep -c '^Package:' "$A/status") stanzas, $(find "$A/info" -name '*.list' | wc -l) lists" >&2
# A package from the middle of the file and the one file it owns.
copies=$(grep -c '^Package: libc6\(-hr[0-9]*\)\?$' "$A/status")
mid=libc6-hr$((copies / 2))
file=/usr/share/hr/$((copies / 2))/$mid
RUNS=${RUNS:-10}
hf() {
  local name=$1; shift
  hyperfine -N --warmup 2 --min-runs "$RUNS" --export-markdown "$OUT/$name.md" "$@"
}
hf dpkg-scale-query "$HR pkg query $mid --root $R --proc none" "dpkg --admindir $A -s $mid"
# The owner lookup searches the lists on as many threads as it may use CPUs (at most 4);
# `taskset -c 0` runs it on one CPU, to show what the threads contribute.
hf dpkg-scale-owner "$HR pkg owner $file --root $R --proc none" \
  "taskset -c 0 $HR pkg owner $file --root $R --proc none" "dpkg --admindir $A -S $file"
hf dpkg-scale-query-missing -i "$HR pkg query nosuchpkg --root $R --proc none" \
  "dpkg --admindir $A -s nosuchpkg"
cat "$OUT"/dpkg-scale-*.md

# Peak RSS (KiB) of each command at each size.
{
  echo "| status | stanzas | query | owner | check -p iscsi | list | dpkg -s | dpkg -S |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
  for mb in "${SIZES[@]}"; do
    r=$(make_root "$mb")
    a=$r/var/lib/dpkg
    c=$(grep -c '^Package: libc6\(-hr[0-9]*\)\?$' "$a/status")
    m=libc6-hr$((c / 2))
    f=/usr/share/hr/$((c / 2))/$m
    rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
    echo "| $(du -m "$a/status" | cut -f1) MB | $(grep -c '^Package:' "$a/status") \
| $(rss "$HR" pkg query "$m" --root "$r" --proc none) \
| $(rss "$HR" pkg owner "$f" --root "$r" --proc none) \
| $(rss "$HR" check -p iscsi --root "$r" --proc none) \
| $(rss "$HR" pkg list --root "$r" --proc none) \
| $(rss dpkg --admindir "$a" -s "$m") | $(rss dpkg --admindir "$a" -S "$f") |"
  done
} | tee "$OUT/rss.md"
