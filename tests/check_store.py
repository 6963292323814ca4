#!/usr/bin/env python3
"""check_store.py FILE ACKDIR [EXPECT]: judge a tasks.json after a load test.

The file must be a JSON array with one record per line between "[" and "]", ids 1..n in
order, no cliente+seq stored twice, and every task acknowledged with 201 (files
ACKDIR/ack.CLIENTE, one seq per line) stored; EXPECT, if given, is the exact count. Seq gaps
are legitimate: a request that failed may or may not have been stored. Prints one line and
exits 0, or exits 1 with the reason. Used by tests/e2e_server.sh and tests/faults_lib.sh.
"""
import json, os, sys
if len(sys.argv) not in (3, 4):
    sys.exit("usage: check_store.py FILE ACKDIR [EXPECT]")
path, ackdir = sys.argv[1], sys.argv[2]
expect = sys.argv[3] if len(sys.argv) == 4 else ""
text = open(path, "rb").read()
try:
    tasks = json.loads(text)
except ValueError as e:
    sys.exit("%s is not valid JSON: %s" % (path, e))
if not isinstance(tasks, list):
    sys.exit("%s: expected a JSON array, got %s" % (path, type(tasks).__name__))
lines = text.decode("utf-8").split("\n")
if len(lines) != len(tasks) + 3 or lines[0] != "[" or lines[-2] != "]" or lines[-1] != "":
    sys.exit("%s: expected one record per line between [ and ], got %d lines for %d tasks"
             % (path, len(lines), len(tasks)))
for i, t in enumerate(tasks):
    if t.get("id") != i + 1:
        sys.exit("%s: record %d: expected id %d, got %r" % (path, i + 1, i + 1, t.get("id")))
seen = {}
for t in tasks:
    if "cliente" in t and "seq" in t:
        k = (t["cliente"], t["seq"])
        if k in seen:
            sys.exit("%s: cliente %r seq %r stored twice (ids %d and %d)"
                     % (path, k[0], k[1], seen[k], t["id"]))
        seen[k] = t["id"]
acked = missing = 0
for name in sorted(os.listdir(ackdir)):
    if not name.startswith("ack."):
        continue
    cliente = name[4:]
    for line in open(os.path.join(ackdir, name)):
        if not line.strip():
            continue
        acked += 1
        if (cliente, int(line)) not in seen:
            missing += 1
            if missing <= 10:
                print("acknowledged but not stored: cliente %s seq %s" % (cliente, line.strip()))
if missing:
    sys.exit("%s: expected all %d acknowledged tasks stored, %d missing" % (path, acked, missing))
if expect and len(tasks) != int(expect):
    sys.exit("%s: expected %s tasks, got %d (%d acknowledged)" % (path, expect, len(tasks), acked))
print("%d tasks, %d acknowledged, each stored exactly once" % (len(tasks), acked))
