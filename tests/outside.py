#!/usr/bin/env python3
"""outside.py - the outside suite's hands and eyes (tests/outside.sh): changes made to tasks.json
the way people and tools make them, and the check of the file afterwards.

    outside.py run STAMPS -- CMD...   run CMD (cp, mv, rm, sed -i, sh -c 'echo ... >'); write
                                      "before_ns after_ns status" (CLOCK_MONOTONIC) to STAMPS
    outside.py editor FILE STAMPS     an editor's save: json.load, json.dump(indent=2) into a
                                      temp file beside FILE, os.rename over it
    outside.py pretty FILE STAMPS     json.dump(indent=2) into FILE itself (open 'w')
    outside.py stale FILE STAMPS MS   a stale save: read FILE (again while the read catches an
                                      append half-way), wait MS ms (the server appends
                                      meanwhile), write what was read to a temp file beside
                                      FILE, os.rename over it
    outside.py lock FILE READY SECS   hold an fcntl write lock (lockf) on FILE, touch READY,
                                      release on SIGTERM or after SECS
    outside.py nuls FILE              print the number of NUL bytes in FILE
    outside.py describe FILE          for a failure: size, runs of NUL bytes, where the JSON
                                      breaks and the bytes around it
    outside.py health BODY PID TASKS  BODY (a /health answer) is 200's {"status":"ok"} from
                                      worker PID with TASKS tasks
    outside.py check FILE ACKDIR [--after NS] [--expect N] [--canonical] [--kept]
                                      judge FILE (below)
    outside.py fsync-dir TRACE FILE   strace -f output: after FILE (or a copy saved beside
                                      it) was created, the process fsync()ed the directory

STAMPS files let a test tell which answers came after a change: each is written after the
change returned, with CLOCK_MONOTONIC times comparable to fault_load -l's.

check: FILE must be a JSON array of objects with unique ids (with --canonical: one record per
line between "[" and "]", ids 1..n in order) and no cliente+seq stored twice. Acknowledged
tasks must be in it:
  ACKDIR/ack.CLIENTE  one seq per line (shell POSTs made after the change): all stored
  ACKDIR/log.CLIENTE  "seq sent_ns answered_ns status" per request (fault_load -l, whose
                      ack.CLIENTE beside it is then ignored): every 201
                      for a request sent at or after --after NS must be stored; a 201 for a
                      request in flight across that moment (sent before, answered after) may
                      be lost legitimately (the server acknowledged it before the change):
                      counted and reported, never a failure
  --kept              every 201, whenever sent, must be in FILE or in a copy the server
                      kept of a replaced file (FILE.replaced-*, JSON arrays)
Prints one line; exit 0, or 1 with the reasons.
"""
import fcntl, json, os, re, signal, subprocess, sys, tempfile, time


def stamp_file(path, before, after, status):
    with open(path, "w") as f:
        f.write("%d %d %d\n" % (before, after, status))


def cmd_run(args):
    if len(args) < 3 or args[1] != "--":
        sys.exit("usage: outside.py run STAMPS -- CMD...")
    before = time.monotonic_ns()
    rc = subprocess.call(args[2:])
    stamp_file(args[0], before, time.monotonic_ns(), rc)
    return rc


def cmd_editor(args):
    path, stamps = args
    with open(path) as f:
        tasks = json.load(f)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tasks.", suffix=".tmp", dir=d)
    with os.fdopen(fd, "w") as f:
        json.dump(tasks, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.chmod(tmp, 0o644)
    before = time.monotonic_ns()
    os.rename(tmp, path)
    stamp_file(stamps, before, time.monotonic_ns(), 0)
    print("%d tasks saved by rename" % len(tasks))
    return 0


def cmd_stale(args):
    path, stamps, ms = args
    for _ in range(50):
        with open(path) as f:
            text = f.read()
        try:
            json.loads(text)
            break
        except ValueError:
            continue
    else:
        sys.exit("%s: no whole JSON list in 50 reads" % path)
    time.sleep(int(ms) / 1000)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tasks.", suffix=".tmp", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    before = time.monotonic_ns()
    os.rename(tmp, path)
    stamp_file(stamps, before, time.monotonic_ns(), 0)
    print("a list of %d bytes read %s ms before, saved by rename" % (len(text), ms))
    return 0


def cmd_pretty(args):
    path, stamps = args
    with open(path) as f:
        tasks = json.load(f)
    before = time.monotonic_ns()
    with open(path, "w") as f:
        json.dump(tasks, f, indent=2, ensure_ascii=False)
    stamp_file(stamps, before, time.monotonic_ns(), 0)
    print("%d tasks rewritten in place" % len(tasks))
    return 0


def cmd_lock(args):
    path, ready, secs = args[0], args[1], float(args[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    f = open(path, "r+")
    fcntl.lockf(f, fcntl.LOCK_EX)
    open(ready, "w").close()
    time.sleep(secs)
    return 0


def cmd_nuls(args):
    with open(args[0], "rb") as f:
        print(f.read().count(b"\0"))
    return 0


def cmd_describe(args):
    data = open(args[0], "rb").read()
    print("%s: %d bytes" % (args[0], len(data)))
    runs = [(m.start(), m.end()) for m in re.finditer(rb"\0+", data)]
    for a, b in runs[:5]:
        print("NUL bytes from %d to %d (%d)" % (a, b, b - a))
    if len(runs) > 5:
        print("... %d runs of NUL bytes in all" % len(runs))
    try:
        json.loads(data)
        print("valid JSON")
    except ValueError as e:
        pos = getattr(e, "pos", 0) or 0
        print("not JSON: %s" % e)
        print("around byte %d: %r" % (pos, data[max(0, pos - 150):pos + 150]))
    return 0


def cmd_health(args):
    body, pid, tasks = args
    try:
        h = json.loads(body)
    except ValueError:
        sys.exit("not JSON: %r" % body[:300])
    want = {"status": "ok", "pid": int(pid), "tasks": int(tasks)}
    got = {k: h.get(k) for k in want}
    if got != want:
        sys.exit("expected %s, got %s" % (want, body[:300]))
    return 0


def cmd_check(args):
    if len(args) < 2:
        sys.exit("usage: outside.py check FILE ACKDIR [--after NS] [--expect N] [--canonical]")
    path, ackdir = args[0], args[1]
    after = None
    expect = None
    canonical = False
    kept = None
    rest = args[2:]
    while rest:
        opt = rest.pop(0)
        if opt == "--after":
            after = int(rest.pop(0))
        elif opt == "--expect":
            expect = int(rest.pop(0))
        elif opt == "--canonical":
            canonical = True
        elif opt == "--kept":
            kept = set()
        else:
            sys.exit("unknown option %s" % opt)
    text = open(path, "rb").read()
    nuls = text.count(b"\0")
    if nuls:
        sys.exit("%s: %d NUL bytes (first at byte %d)" % (path, nuls, text.index(b"\0")))
    try:
        tasks = json.loads(text)
    except ValueError as e:
        sys.exit("%s is not valid JSON: %s" % (path, e))
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        sys.exit("%s: expected a JSON array of objects" % path)
    ids = {}
    for i, t in enumerate(tasks):
        if t.get("id") in ids:
            sys.exit("%s: id %r twice (records %d and %d)" % (path, t.get("id"), ids[t.get("id")],
                                                              i + 1))
        ids[t.get("id")] = i + 1
    if canonical:
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
                sys.exit("%s: cliente %r seq %r stored twice (ids %r and %r)"
                         % (path, k[0], k[1], seen[k], t.get("id")))
            seen[k] = t.get("id")
    copies = 0
    if kept is not None:
        d = os.path.dirname(os.path.abspath(path))
        base = os.path.basename(path) + ".replaced-"
        for name in sorted(os.listdir(d)):
            if name.startswith(base):
                copies += 1
                for t in json.load(open(os.path.join(d, name))):
                    if "cliente" in t and "seq" in t:
                        kept.add((t["cliente"], t["seq"]))
    in_copies = 0
    must = missing = flight = flight_lost = before = other_stored = 0
    problems = []
    names = sorted(os.listdir(ackdir))
    for name in names:
        m = re.match(r"^(ack|log)\.(.+)$", name)
        if not m:
            continue
        kind, cliente = m.groups()
        if kind == "ack" and "log." + cliente in names:
            continue  # fault_load -l writes both: the log has the times
        for line in open(os.path.join(ackdir, name)):
            f = line.split()
            if not f:
                continue
            if kind == "ack":
                seq, required = int(f[0]), True
            else:
                seq, sent, answered, status = int(f[0]), int(f[1]), int(f[2]), int(f[3])
                stored = (cliente, seq) in seen
                if status != 201:
                    other_stored += stored
                    continue
                if kept is not None and not stored:
                    if (cliente, seq) in kept:
                        in_copies += 1
                        continue
                    required = True
                elif after is None or sent >= after:
                    required = True
                elif answered >= after:
                    flight += 1
                    flight_lost += not stored
                    continue
                else:
                    before += 1
                    continue
            must += 1
            if (cliente, seq) not in seen:
                missing += 1
                if len(problems) < 10:
                    problems.append("acknowledged but not stored: cliente %s seq %d"
                                    % (cliente, seq))
    summary = ("%d tasks; %d acknowledged after the change, each stored once; %d in flight "
               "across it (%d of them not stored); %d acknowledged before it; %d stored "
               "without a 201" % (len(tasks), must - missing, flight, flight_lost, before,
                                  other_stored))
    if kept is not None:
        summary += "; %d acknowledged and only in the %d kept copies" % (in_copies, copies)
    if missing:
        for p in problems:
            print(p)
        sys.exit("%s: %d of %d tasks acknowledged after the change are missing (%s)"
                 % (path, missing, must, summary))
    if expect is not None and len(tasks) != expect:
        sys.exit("%s: expected %d tasks, got %d (%s)" % (path, expect, len(tasks), summary))
    print(summary)
    return 0


def cmd_fsync_dir(args):
    """Each process's openat() results and fsync()s in strace -f order: after a creating
    openat of FILE or FILE.<kind>-..., the same process fsync()s a descriptor that openat()
    gave it for FILE's directory before it creates anything else."""
    trace, path = args
    d = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    fds = {}      # (pid, fd) -> path
    pending = {}  # pid -> the file created and not yet followed by a directory fsync
    found, lost = [], []
    line_re = re.compile(r'^(?:\[pid\s+(\d+)\]\s+|(\d+)\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+)')
    unfinished = {}  # pid -> the start of a call another process's line interrupted
    for raw in open(trace):
        line = raw.strip()
        m = re.match(r"^(\d+)\s+(.*) <unfinished \.\.\.>$", line)
        if m:
            unfinished[m.group(1)] = m.group(2)
            continue
        m = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$", line)
        if m and m.group(1) in unfinished:
            line = m.group(1) + " " + unfinished.pop(m.group(1)) + m.group(2)
        m = line_re.match(line)
        if not m:
            continue
        pid = m.group(1) or m.group(2) or "0"
        call, argstr, ret = m.group(3), m.group(4), int(m.group(5))
        if call == "openat" and ret >= 0:
            p = re.search(r'"([^"]*)"', argstr)
            if not p:
                continue
            name = p.group(1)
            fds[(pid, ret)] = name
            created = "O_CREAT" in argstr and (
                name.endswith("/" + base) or name == base or
                re.search(r"/%s\.(orig|torn)-" % re.escape(base), name))
            if created:
                if pid in pending:
                    lost.append(pending[pid])
                pending[pid] = name
        elif call in ("fsync", "fdatasync") and ret == 0:
            fd = int(argstr.split(",")[0])
            if fds.get((pid, fd)) in (d, d + "/") and pid in pending:
                found.append(pending.pop(pid))
    lost += list(pending.values())
    print("directory fsync after creating: %s" % (", ".join(os.path.basename(x) for x in found)
                                                  or "none"))
    if lost:
        print("no directory fsync after creating: %s" % ", ".join(lost))
        return 1
    return 0 if found else 1


def main():
    cmds = {"run": cmd_run, "editor": cmd_editor, "stale": cmd_stale, "pretty": cmd_pretty, "lock": cmd_lock,
            "nuls": cmd_nuls, "describe": cmd_describe, "health": cmd_health, "check": cmd_check,
            "fsync-dir": cmd_fsync_dir}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]))


if __name__ == "__main__":
    main()
