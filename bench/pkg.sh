#!/usr/bin/env bash
# Whole-process timing of `hostready pkg query/owner` against `rpm -q/-qf` on the same
# ~600-package SQLite rpmdb (written by Debian's real rpm), and against `dpkg -s/-S` on this
# machine's dpkg database. Needs: rpm, rpmbuild, hyperfine (scripts/setup installs them).
# Usage: bench/pkg.sh [PACKAGES]   (default 600); results go to stdout and $OUT (markdown).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-600}
OUT=${OUT:-target/bench-pkg}
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The rpmdb is kept in target/bench-pkg-root-$N and reused by later runs (REBUILD=1: rebuild).
R=$PWD/target/bench-pkg-root-$N

cargo build --release -p hostready --quiet
# HR=/path/to/hostready measures another build (e.g. the one before a change).
HR=${HR:-$PWD/target/release/hostready}

if [ "${REBUILD:-0}" = 1 ] || [ ! -f "$R/var/lib/rpm/rpmdb.sqlite" ]; then
rm -rf "$R"
# One spec, N subpackages: one rpmbuild run builds them all (fast), each owns one file.
spec=$work/bench.spec
{
  printf 'Name: hrbench\nVersion: 1.0\nRelease: 1\nSummary: b\nLicense: MIT\nBuildArch: noarch\n%%description\nb\n'
  for i in $(seq 0 $((N - 2))); do
    printf '%%package -n hrpkg%d\nSummary: p\n%%description -n hrpkg%d\np\n' "$i" "$i"
  done
  printf '%%install\nmkdir -p %%{buildroot}/usr/share/hr\n'
  printf 'for i in $(seq 0 %d); do echo $i > %%{buildroot}/usr/share/hr/file$i; done\n' $((N - 2))
  printf 'echo x > %%{buildroot}/usr/share/hr/main\n%%files\n/usr/share/hr/main\n'
  for i in $(seq 0 $((N - 2))); do printf '%%files -n hrpkg%d\n/usr/share/hr/file%d\n' "$i" "$i"; done
} > "$spec"
echo "building $N packages..." >&2
rpmbuild -bb --quiet --define "_topdir $work/top" --define "_build_id_links none" \
  --define "_binary_payload w0.ufdio" "$spec" >/dev/null
mkdir -p "$R"
rpm --root "$R" --dbpath /var/lib/rpm -i --nodeps --justdb --noscripts "$work"/top/RPMS/noarch/*.rpm 2>/dev/null
fi
echo "rpmdb: $(rpm --root "$R" --dbpath /var/lib/rpm -qa | wc -l) packages, $(du -h "$R/var/lib/rpm/rpmdb.sqlite" | cut -f1)" >&2

mid=hrpkg$((N / 2))
file=/usr/share/hr/file$((N / 2))
RPM="rpm --root $R --dbpath /var/lib/rpm"
# A loaded 2-core machine gives noisy means: many runs, and compare the minimums.
RUNS=${RUNS:-300}
hf() {
  local name=$1; shift
  hyperfine -N --warmup 20 --min-runs "$RUNS" --export-markdown "$OUT/$name.md" "$@"
}
hf 0-floor "$HR --version" "rpm --version" "dpkg --version"
hf rpm-query "$HR pkg query $mid --root $R --proc none" "$RPM -q $mid"
hf rpm-owner "$HR pkg owner $file --root $R --proc none" "$RPM -qf $file"
hf rpm-query-missing -i "$HR pkg query nosuchpkg --root $R --proc none" "$RPM -q nosuchpkg"
hf dpkg-query "$HR pkg query libc6" "dpkg -s libc6"
hf dpkg-owner "$HR pkg owner /usr/bin/dpkg" "dpkg -S /usr/bin/dpkg"
cat "$OUT"/[0-9a-z]*-*.md

# Instructions executed (user space, whole process, dynamic loader included): independent of
# the machine's load, unlike wall time. perf's counters are unavailable in this VM, so callgrind.
if command -v valgrind >/dev/null; then
  {
    echo "| Command | Instructions |"
    echo "|:---|---:|"
    while IFS= read -r cmd; do
      # shellcheck disable=SC2086
      # dpkg -s/-S exec dpkg-query: follow children and add up every process.
      n=$(valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null $cmd \
        2>&1 >/dev/null | sed -n 's/.*Collected : //p' | paste -sd+ | bc)
      echo "| \`${cmd//$R/ROOT}\` | $n |"
    done <<EOF
$HR --version
$HR pkg query $mid --root $R --proc none
$RPM -q $mid
$HR pkg owner $file --root $R --proc none
$RPM -qf $file
$HR pkg query libc6
dpkg -s libc6
$HR pkg owner /usr/bin/dpkg
dpkg -S /usr/bin/dpkg
EOF
  } | tee "$OUT/instructions.md"
fi
