#!/usr/bin/env python3
"""check_fsync_log.py - judges the event log of tests/shim_fsync.c (see e2e_fsync.sh).

    check_fsync_log.py order LOG FILE POSTS
        Every 201 response follows a successful fdatasync of FILE that was called after the
        pwrite of that very record had returned and returned before the response was sent
        (the Location of the response names the id; the record's bytes in FILE as it is at
        the end must lie inside that pwrite, alone or in a batch). The sync is the
        responding worker's own, or, with group commit, another worker's that covered the
        record. Exactly POSTS 201s; never more syncs than pwrites in the workers.
    check_fsync_log.py eio LOG FILE
        The one failed sync (EIO) of FILE came after the pwrite of a record and is followed,
        in that worker, by a 500 response and no 201 in between.
    check_fsync_log.py dir-create LOG FILE
        FILE was created, and its directory was fsync'ed after that and before the first
        201 response.
    check_fsync_log.py dir-copies LOG FILE KIND...
        For each copy FILE.KIND-* created beside FILE (KIND: orig, torn): the copy is
        fsync'ed, then the directory, before FILE is written again.

Prints one line per finding; exit 0 when every check holds, 1 otherwise, 2 on bad usage
or an unreadable log.
"""
import os
import re
import sys


def read_log(path):
    events = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 5)
            if len(parts) != 6:
                continue
            seq, pid, event, result, fpath, data = parts
            events.append({"seq": int(seq), "pid": int(pid), "event": event, "result": result,
                           "path": fpath, "data": data})
    events.sort(key=lambda e: e["seq"])
    return events


def is_sync(e):
    return e["event"] in ("fdatasync", "fsync")


def sync_spans(events, file):
    """Every sync of FILE as (call seq, return seq, pid, result), its call paired with the
    next return in the same process (a process makes one call at a time)."""
    spans, open_calls = [], {}
    for e in events:
        if e["path"] != file:
            continue
        if e["event"] in ("fdatasync-call", "fsync-call"):
            open_calls[e["pid"]] = e["seq"]
        elif is_sync(e) and e["pid"] in open_calls:
            spans.append((open_calls.pop(e["pid"]), e["seq"], e["pid"], e["result"]))
    return spans


def record_ranges(file):
    """id -> (start, end) of each record's line in FILE as it is now."""
    ranges, pos = {}, 0
    with open(file, "rb") as f:
        for line in f:
            m = re.match(rb'\{"id":(\d+),', line)
            if m:
                ranges[m.group(1).decode()] = (pos, pos + len(line.rstrip(b",\n")))
            pos += len(line)
    return ranges


def pwrite_span(e):
    n, _, off = e["result"].partition("@")
    return int(off), int(off) + int(n)


def check_order(events, file, posts):
    bad = []
    own = shared = 0
    ranges = record_ranges(file)
    spans = sync_spans(events, file)
    created = [e for e in events if e["event"] == "send" and e["data"].startswith("HTTP/1.1 201")]
    for r in created:
        m = re.search(r"Location: /tareas/(\d+)", r["data"])
        if not m:
            bad.append("201 at #%d (pid %d) has no Location in its first bytes" % (r["seq"],
                                                                                 r["pid"]))
            continue
        tid = m.group(1)
        if tid not in ranges:
            bad.append("201 for task %s at #%d: no such record in %s" % (tid, r["seq"], file))
            continue
        start, end = ranges[tid]
        mine = [e for e in events if e["pid"] == r["pid"] and e["seq"] < r["seq"]]
        # The pwrite that put this record's bytes in the file (alone or in a batch).
        writes = [e for e in mine if e["event"] == "pwrite" and e["path"] == file and
                  pwrite_span(e)[0] <= start and end <= pwrite_span(e)[1]]
        if not writes:
            bad.append("201 for task %s at #%d (pid %d): no pwrite of its bytes %d..%d to %s "
                       "before it" % (tid, r["seq"], r["pid"], start, end, file))
            continue
        w = writes[-1]
        covering = [sp for sp in spans if w["seq"] < sp[0] and sp[1] < r["seq"]]
        if not covering:
            bad.append("201 for task %s at #%d (pid %d): no fdatasync of %s called after the "
                       "record's pwrite (#%d) and done before the response"
                       % (tid, r["seq"], r["pid"], file, w["seq"]))
        elif any(sp[3] != "0" for sp in covering):
            bad.append("201 for task %s at #%d after a failed sync" % (tid, r["seq"]))
        elif any(sp[2] == r["pid"] for sp in covering):
            own += 1
        else:
            shared += 1
    if len(created) != posts:
        bad.append("%d responses 201, expected %d" % (len(created), posts))
    workers = {r["pid"] for r in created}
    nsync = sum(1 for e in events if is_sync(e) and e["path"] == file and e["pid"] in workers)
    nwrite = sum(1 for e in events if e["event"] == "pwrite" and e["path"] == file and
                 e["pid"] in workers)
    # One sync per commit (a commit may carry a batch of tasks), none without a write.
    if not 1 <= nsync <= nwrite:
        bad.append("%d syncs of %s in the workers for %d pwrites (expected one per commit)"
                   % (nsync, file, nwrite))
    return bad, ("%d responses 201, each after an fdatasync called after the pwrite of its "
                 "record (%d covered by the worker's own sync, %d by another's; %d pwrites, "
                 "%d syncs)" % (len(created), own, shared, nwrite, nsync))


def check_eio(events, file):
    failed = [e for e in events if is_sync(e) and e["result"] == "EIO"]
    if len(failed) != 1 or failed[0]["path"] != file:
        return ["expected one failed sync, of %s; got %s" % (
            file, ["#%d %s" % (e["seq"], e["path"]) for e in failed])], ""
    f = failed[0]
    mine = [e for e in events if e["pid"] == f["pid"]]
    before = [e for e in mine if e["seq"] < f["seq"] and e["event"] == "pwrite" and
              e["path"] == file]
    after = [e for e in mine if e["seq"] > f["seq"] and e["event"] == "send"]
    if not before:
        return ["the failed sync #%d follows no pwrite of %s" % (f["seq"], file)], ""
    if not after or not after[0]["data"].startswith("HTTP/1.1 500"):
        return ["the failed sync #%d is not followed by a 500 response (next: %s)" % (
            f["seq"], after[0]["data"][:40] if after else "nothing")], ""
    return [], "sync #%d failed with EIO after the pwrite #%d; next response: 500 at #%d" % (
        f["seq"], before[-1]["seq"], after[0]["seq"])


def check_dir_create(events, file):
    directory = os.path.dirname(file)
    creates = [e for e in events if e["event"] == "create" and e["path"] == file]
    if not creates:
        return ["no creation of %s in the log" % file], ""
    c = creates[0]
    first_201 = next((e["seq"] for e in events if e["event"] == "send" and
                      e["data"].startswith("HTTP/1.1 201")), None)
    if first_201 is None:
        return ["no response 201 in the log"], ""
    syncs = [e for e in events if is_sync(e) and e["path"] == directory and e["result"] == "0" and
             c["seq"] < e["seq"] < first_201]
    if not syncs:
        return ["%s created at #%d, but its directory %s is not fsync'ed before the first 201 "
                "(#%d)" % (file, c["seq"], directory, first_201)], ""
    return [], "%s created at #%d, directory fsync'ed at #%d, first 201 at #%d" % (
        file, c["seq"], syncs[0]["seq"], first_201)


def check_dir_copies(events, file, kinds):
    directory = os.path.dirname(file)
    bad, good = [], []
    for kind in kinds:
        prefix = "%s.%s-" % (file, kind)
        copies = [e for e in events if e["event"] == "create" and e["path"].startswith(prefix)]
        if not copies:
            bad.append("no %s copy of %s created" % (kind, file))
            continue
        for c in copies:
            after = [e for e in events if e["seq"] > c["seq"]]
            own = next((e for e in after if is_sync(e) and e["path"] == c["path"]), None)
            nxt = next((e["seq"] for e in after if e["event"] == "pwrite" and e["path"] == file),
                       None)
            if own is None:
                bad.append("%s: never fsync'ed" % c["path"])
                continue
            dsync = next((e for e in after if is_sync(e) and e["path"] == directory and
                          e["result"] == "0" and e["seq"] > own["seq"] and
                          (nxt is None or e["seq"] < nxt)), None)
            if dsync is None:
                bad.append("%s: created at #%d and fsync'ed at #%d, but the directory %s is not "
                           "fsync'ed before %s is written again (#%s)"
                           % (c["path"], c["seq"], own["seq"], directory, file, nxt))
            else:
                good.append("%s: copy synced at #%d, directory at #%d, %s written at #%s"
                            % (os.path.basename(c["path"]), own["seq"], dsync["seq"],
                               os.path.basename(file), nxt))
    return bad, "; ".join(good)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    what, log, file = sys.argv[1], sys.argv[2], os.path.realpath(sys.argv[3])
    try:
        events = read_log(log)
    except OSError as e:
        print("check_fsync_log: %s: %s" % (log, e.strerror), file=sys.stderr)
        return 2
    if what == "order" and len(sys.argv) == 5:
        bad, good = check_order(events, file, int(sys.argv[4]))
    elif what == "eio" and len(sys.argv) == 4:
        bad, good = check_eio(events, file)
    elif what == "dir-create" and len(sys.argv) == 4:
        bad, good = check_dir_create(events, file)
    elif what == "dir-copies" and len(sys.argv) >= 5:
        bad, good = check_dir_copies(events, file, sys.argv[4:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for b in bad[:20]:
        print(b)
    if bad:
        return 1
    print(good)
    return 0


if __name__ == "__main__":
    sys.exit(main())
