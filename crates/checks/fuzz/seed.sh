#!/usr/bin/env bash
# Seeds the fuzz corpora from the built-in profiles and config samples (not committed: corpora
# live in corpus/, which .gitignore keeps out).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/profile corpus/multipath corpus/nfs corpus/known_bad
for f in ../profiles/*.yaml; do cp "$f" "corpus/profile/$(basename "$f" .yaml)"; done
# Two files: a.yaml includes b.yaml (split at the NUL).
printf 'name: a\ninclude: [b.yaml, kernel]\nrequirements:\n  - command: [/bin/true, x]\n    timeout: 2s\n    on_timeout: fail\n    env: {A: b}\n\0name: b\ninclude: [a.yaml]\n' >corpus/profile/cycle
# Three files: a includes b many times and c; b includes c (a fan-out, each loaded once).
printf 'name: a\ninclude: [b.yaml, b.yaml, b.yaml, c.yaml]\n\0name: b\ninclude: [c.yaml, c.yaml]\nrequirements: [{id: q, nfs_client: {}}]\n\0name: c\ncondition: example.com/CReady\n' >corpus/profile/fanout
# Near the pre-scan's bounds: flow, block and compact nesting, quotes, block scalars.
printf 'name: d\nrequirements:\n  - cpu_flags: {x86_64: [[[["a]"]]]]}\n    description: |\n      [[[[\n  - - - x\n' >corpus/profile/nesting
printf '\xef\xbb\xbfname: e\ncondition: Ready\nrequirements:\n  - id: "a\\e[31m"\n    command: [/bin/true]\n    timeout: 1ns\n    env: {"A=B": "x"}\n' >corpus/profile/gaps
if [ -r /etc/multipath.conf ]; then cp /etc/multipath.conf corpus/multipath/host; fi
printf 'defaults {\n    user_friendly_names yes\n}\nblacklist {\n    devnode "^sd[a-z0-9]+"  # longhorn\n    device {\n        vendor "IET"\n    }\n}\nblacklist_exceptions {\n    devnode "^sda"\n}\n' >corpus/multipath/longhorn
if [ -r /etc/nfsmount.conf ]; then cp /etc/nfsmount.conf corpus/nfs/host; fi
printf '[ NFSMount_Global_Options ]\n Defaultvers=4.2\n# Nfsvers=3\n[ Server "nfs.example" ]\nNfsvers=3\n' >corpus/nfs/sample
printf '5.15.0-94..5.15.0-99\n5.15.0-94-generic\n5.15.0-100\n' >corpus/known_bad/range
printf '6.5.0-21\n6.5.0-21-generic\n6.5.0-210\n%s\n' "$(uname -r)" >corpus/known_bad/release
true
