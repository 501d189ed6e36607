#!/usr/bin/env bash
# `hostready pkg query/owner` against `rpm -q/-qf` (Debian's rpm, bdb_ro backend) on large
# Berkeley DB databases (10 and 150 MB by default), side by side in one hyperfine run per
# lookup, plus the same lookups on an NDB file holding the same headers (rpm cannot read NDB
# here: Debian builds it without the ndb backend; its answers are compared with rpm's reading
# of the Berkeley DB file holding the same headers). With the process floors (`--version`)
# in the same run, then instructions per whole process (valgrind's callgrind: independent of
# the machine's load) unless CALLGRIND=0.
# The binary timed is the one that ships: the image's static, stripped, non-PIE build
# (`scripts/image binary`). RELEASE=1 adds the dynamic release build (target/release, a second
# LTO build: many minutes on 2 shared cores) as rows of its own; without it the results say it
# was left out. HR=PATH times another binary instead of the image's.
# Needs: rpm, db5.3-util, hyperfine, valgrind (scripts/setup installs them).
# Usage: bench/pkg-scale.sh [MB ...]   (default: 10 150); results go to stdout and $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${*:-10 150}
OUT=${OUT:-target/bench-pkg-scale}
CACHE=${CACHE:-$PWD/target/tmp/rpmdb-scale}
FIXTURES=${FIXTURES:-$PWD/../shared/fixtures/rpmdb}
mkdir -p "$OUT"
rm -f "$OUT"/*.md "$OUT"/*.json "$OUT"/instructions-*.txt

# The generator only (debug profile: Cargo.toml builds hostready-testkit at opt-level 3 there).
cargo build -p hostready-testkit --bin make-scale-rpmdb --quiet
MAKE=$PWD/target/debug/make-scale-rpmdb
HR=${HR:-$(scripts/image binary)}
HRD=
if [ -n "${RELEASE:-}" ]; then
  cargo build --release -p hostready --quiet
  HRD=$PWD/target/release/hostready
fi
RUNS=${RUNS:-100}
# The machine's process floor in the same run: an empty Rust program linked as the image's
# binary is (static, non-PIE, stripped; as bench/start-time.sh builds it).
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo 'fn main() {}' > "$work/empty.rs"
EMPTY=$work/empty-static
rustc -C opt-level=3 -C panic=abort -C strip=symbols --target x86_64-unknown-linux-gnu \
  -C target-feature=+crt-static -C relocation-model=static -o "$EMPTY" "$work/empty.rs"
# Command lines shown with short names: `hostready` (static image build), `hostready-dynamic`.
names() { sed -e "s#$CACHE#CACHE#g" -e "s#$EMPTY#empty-static-rust-program#g" -e "s#$HR #hostready #g" ${HRD:+-e "s#$HRD #hostready-dynamic #g"}; }

for mb in $SIZES; do
  # Generated once and cached (the same databases the memory test uses).
  IFS=$'\t' read -r R bytes count name file < <("$MAKE" "$CACHE" bdb "$mb" "$FIXTURES")
  IFS=$'\t' read -r N _ _ _ _ < <("$MAKE" "$CACHE" ndb "$mb" "$FIXTURES")
  echo "$mb MB: Packages $bytes bytes, $count packages; query $name, owner $file" >&2
  dyn_query=() dyn_owner=()
  if [ -n "$HRD" ]; then
    dyn_query=("$HRD --version" "$HRD pkg query $name --root $R --proc none")
    dyn_owner=("$HRD pkg owner $file --root $R --proc none")
  fi
  hyperfine -N --warmup 5 --min-runs "$RUNS" --export-markdown "$OUT/query-$mb.md" --export-json "$OUT/query-$mb.json" \
    "$EMPTY" "$HR --version" "rpm --version" \
    "$HR pkg query $name --root $R --proc none" \
    "rpm --define '_db_backend bdb_ro' --root $R --dbpath /var/lib/rpm -q $name" \
    "$HR pkg query $name --root $N --proc none" "${dyn_query[@]}"
  hyperfine -N --warmup 5 --min-runs "$RUNS" --export-markdown "$OUT/owner-$mb.md" --export-json "$OUT/owner-$mb.json" \
    "$HR pkg owner $file --root $R --proc none" \
    "rpm --define '_db_backend bdb_ro' --root $R --dbpath /var/lib/rpm -qf $file" \
    "$HR pkg owner $file --root $N --proc none" "${dyn_owner[@]}"
  # Not installed: rpm trusts its Name index; hostready then checks every header (a damaged
  # index must never read as "not installed"), so this is its worst case.
  hyperfine -N -i --warmup 2 --min-runs 10 --export-markdown "$OUT/missing-$mb.md" \
    "$HR pkg query no-such-package --root $R --proc none" \
    "rpm --define '_db_backend bdb_ro' --root $R --dbpath /var/lib/rpm -q no-such-package"
  if [ "${CALLGRIND:-1}" != 0 ]; then
    rpmq="rpm --define '_db_backend bdb_ro' --root $R --dbpath /var/lib/rpm"
    for cmd in "$HR --version" "rpm --version" \
      "$HR pkg query $name --root $R --proc none" "$rpmq -q $name" \
      "$HR pkg query $name --root $N --proc none" \
      "$HR pkg owner $file --root $R --proc none" "$rpmq -qf $file" \
      "$HR pkg owner $file --root $N --proc none"; do
      # eval: the rpm command carries a quoted --define.
      ir=$(eval "valgrind --tool=callgrind --callgrind-out-file=/dev/null $cmd" 2>&1 >/dev/null |
        sed -n 's/.*Collected : //p')
      printf '| `%s` | %s |\n' "$cmd" "$ir"
    done | names | tee "$OUT/instructions-$mb.txt" >&2
  fi
done
[ -n "$HRD" ] || echo "(the dynamic release build was left out: RELEASE=1 adds it)"
# Medians and minimums (on a shared machine the means carry the scheduling noise), and each
# hostready lookup's share of rpm's time in the same run (the target: at most 0.2).
for f in "$OUT"/query-*.json "$OUT"/owner-*.json; do
  echo "## $(basename "$f" .json): median / min ms, share of rpm's"
  python3 - "$f" <<'PY' | names
import json, sys
r = json.load(open(sys.argv[1]))["results"]
rpm = next(x for x in r if x["command"].startswith("rpm --define"))
for x in r:
    share = ""
    if " pkg " in x["command"]:
        share = " | %.2f / %.2f" % (x["median"] / rpm["median"], x["min"] / rpm["min"])
    print("| `%s` | %.2f / %.2f%s |" % (x["command"], x["median"] * 1e3, x["min"] * 1e3, share))
PY
done
for f in "$OUT"/*.md; do echo "## $(basename "$f" .md)"; names <"$f"; done
