#!/usr/bin/env bash
# Seeds the fuzz corpora from the shared fixtures (not committed: corpora live in corpus/,
# which .gitignore keeps out). Header seeds are the records of the BDB and NDB fixtures.
set -euo pipefail
cd "$(dirname "$0")"
F=../../../../shared/fixtures/rpmdb
mkdir -p corpus/bdb corpus/ndb corpus/header corpus/dpkg
cp "$F/libuuid-bdb/Packages" corpus/bdb/libuuid
cp "$F/sle15-bci-ndb/Packages.db" corpus/ndb/sle15
python3 - "$F" <<'PY'
import sys, sqlite3
con = sqlite3.connect(f"file:{sys.argv[1]}/cbl-mariner-2.0-sqlite/rpmdb.sqlite?mode=ro&immutable=1", uri=True)
for i, (blob,) in enumerate(con.execute("SELECT blob FROM Packages LIMIT 40")):
    open(f"corpus/header/mariner{i}", "wb").write(blob)
PY
head -c 60000 /var/lib/dpkg/status > corpus/dpkg/status
