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

cargo build --release -p hostready --quiet
HR=$PWD/target/release/hostready

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
R=$work/root
mkdir -p "$R"
rpm --root "$R" --dbpath /var/lib/rpm -i --nodeps --justdb --noscripts "$work"/top/RPMS/noarch/*.rpm 2>/dev/null
echo "rpmdb: $(rpm --root "$R" --dbpath /var/lib/rpm -qa | wc -l) packages, $(du -h "$R/var/lib/rpm/rpmdb.sqlite" | cut -f1)" >&2

mid=hrpkg$((N / 2))
file=/usr/share/hr/file$((N / 2))
RPM="rpm --root $R --dbpath /var/lib/rpm"
hyperfine -N --warmup 5 --export-markdown "$OUT/rpm-query.md" \
  "$HR pkg query $mid --root $R --proc none" "$RPM -q $mid"
hyperfine -N --warmup 5 --export-markdown "$OUT/rpm-owner.md" \
  "$HR pkg owner $file --root $R --proc none" "$RPM -qf $file"
hyperfine -N --warmup 5 --export-markdown "$OUT/dpkg-query.md" \
  "$HR pkg query libc6" "dpkg -s libc6"
hyperfine -N --warmup 5 --export-markdown "$OUT/dpkg-owner.md" \
  "$HR pkg owner /usr/bin/dpkg" "dpkg -S /usr/bin/dpkg"
cat "$OUT"/*.md
