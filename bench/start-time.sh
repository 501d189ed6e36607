#!/usr/bin/env bash
# Start-up cost of the image's binary, side by side in one hyperfine run (docs/image.md):
#   - an empty Rust program (fn main() {}), dynamic (rustc's default: PIE, glibc shared) and
#     static (+crt-static, relocation-model=static, stripped: how scripts/image links hostready);
#   - hostready --version from the dynamic release build (target/release, the tarball binary);
#   - hostready --version from the image's static, stripped, non-PIE build (scripts/image binary).
# The goal (issue 14): the static hostready within 1.2x of the empty static program. Also prints
# each binary's size and its count of dynamic relocations (readelf), the cost the static link
# removes.
#   bench/start-time.sh [RESULTS.md]
# NO_RELEASE=1 leaves the dynamic release build out (it is a second full LTO build: tens of
# minutes on 2 shared cores) and says so in the results.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/dev/stdout}
target=x86_64-unknown-linux-gnu
dynamic=$PWD/target/release/hostready
release_row=()
if [ -z "${NO_RELEASE:-}" ]; then
  cargo build --release -q -p hostready
  release_row=(-n "hostready --version, dynamic release build" "$dynamic --version")
fi
static=$(scripts/image binary)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo 'fn main() {}' > "$work/empty.rs"
# The same optimisation and panic strategy as the release profile (Cargo.toml).
rustc -C opt-level=3 -C panic=abort -o "$work/empty-dynamic" "$work/empty.rs"
rustc -C opt-level=3 -C panic=abort -C strip=symbols --target "$target" \
  -C target-feature=+crt-static -C relocation-model=static -o "$work/empty-static" "$work/empty.rs"
hyperfine -N --warmup 20 --min-runs 300 --export-markdown "$work/table.md" --export-json "$work/runs.json" \
  -n "empty Rust program, dynamic (PIE)" "$work/empty-dynamic" \
  -n "empty Rust program, static non-PIE" "$work/empty-static" \
  "${release_row[@]}" \
  -n "hostready --version, static image build" "$static --version" >/dev/null
relocs() { readelf -rW "$1" 2>/dev/null | grep -c '^[0-9a-f]\{8,\} ' || true; }
{
  echo "### Start time ($(date -u +%F), $(nproc) cores shared, kernel $(uname -r))"
  echo
  cat "$work/table.md"
  echo
  python3 - "$work/runs.json" <<'PY'
import json, sys
# Means, medians and minimums: on a shared machine the mean carries the scheduling noise.
runs = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
def ratio(a, b):
    a, b = runs[a], runs[b]
    return "{:.2f}x mean, {:.2f}x median, {:.2f}x min".format(
        a["mean"] / b["mean"], a["median"] / b["median"], a["min"] / b["min"])
es = "empty Rust program, static non-PIE"
ed = "empty Rust program, dynamic (PIE)"
hs = "hostready --version, static image build"
hd = "hostready --version, dynamic release build"
print(f"- static hostready / empty static program: {ratio(hs, es)} (goal <= 1.2x)")
print(f"- static hostready / empty dynamic program: {ratio(hs, ed)}")
if hd not in runs:
    print("- dynamic release build: left out (NO_RELEASE=1)")
else:
    print(f"- dynamic hostready / empty dynamic program: {ratio(hd, ed)}")
PY
  if command -v perf >/dev/null && [ -z "${NO_PERF:-}" ]; then
    # What the time is made of, per run (mean of 200): page faults (each page of code, data,
    # heap and stack first touched) and task-clock (CPU time). NO_PERF=1 leaves it out.
    echo
    echo "| per run (perf stat -r 200) | page faults | task-clock ms |"
    echo "|---|---:|---:|"
    for pair in "empty Rust program, static non-PIE:$work/empty-static" \
        "hostready --version, static image build:$static --version"; do
      # shellcheck disable=SC2086 # the command line is split on purpose
      perf stat -x, -r 200 -e page-faults,task-clock ${pair#*:} 2>"$work/perf.csv" >/dev/null
      faults=$(awk -F, '$3 ~ /page-faults/ {printf "%.0f", $1}' "$work/perf.csv")
      clock=$(awk -F, '$3 ~ /task-clock/ {printf "%.3f", $1}' "$work/perf.csv")
      echo "| ${pair%%:*} | $faults | $clock |"
    done
  fi
  echo
  echo "| binary | size | dynamic relocations |"
  echo "|---|---:|---:|"
  for pair in "empty, dynamic:$work/empty-dynamic" "empty, static:$work/empty-static" \
      "hostready, dynamic release:$dynamic" "hostready, static image:$static"; do
    b=${pair#*:}
    [ -x "$b" ] || continue
    echo "| ${pair%%:*} ($(file -b "$b" | cut -d, -f2 | sed 's/^ //')) | $(stat -c %s "$b" | numfmt --to=iec-i --suffix=B) | $(relocs "$b") |"
  done
} >"$out"
