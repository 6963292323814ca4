#!/usr/bin/env python3
"""limit_requests.py - the limit table of e2e_server.sh: for every limit, a request exactly
at it and one just past it, written byte for byte into files for raw_http.

    limit_requests.py DIR MAX_REQUEST_LINE MAX_HEADER_BYTES MAX_HEADERS MAX_BODY

Writes DIR/NN.req (the exact bytes of one request) and prints one line per request:

    NN.req<TAB>STATUS<TAB>BODY-SUBSTRING<TAB>DESCRIPTION

STATUS is what the server must answer (README, Limits: 414, 431, 413, 400 naming the
field); BODY-SUBSTRING must appear in the response body. The limits are the server's
flags, so the table follows them: the request line and header limits are counted as
the parser counts them (http_parser.h: the request line without its CRLF; the header
bytes from the first byte of the request line to the end of the empty line), the body
limits on the body's bytes (decoded, for chunked), the task fields in bytes of UTF-8
(task_json.h).
"""
import json
import os
import sys

TITULO_MAX = 1024
DESCRIPCION_MAX = 4096
CLIENTE_MAX = 128
SEQ_MAX = 2**53 - 1


def get(target, fields=()):
    head = "GET %s HTTP/1.1\r\nHost: e2e\r\n" % target
    for name, value in fields:
        head += "%s: %s\r\n" % (name, value)
    return (head + "\r\n").encode()


def post(body, chunks=None):
    if chunks is None:
        return (b"POST /tareas HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body
    out = b"POST /tareas HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n" \
          b"Transfer-Encoding: chunked\r\n\r\n"
    pos = 0
    for size in chunks:
        out += b"%x\r\n" % size + body[pos:pos + size] + b"\r\n"
        pos += size
    assert pos == len(body)
    return out + b"0\r\n\r\n"


def task(**fields):
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def padded_task(size):
    """A valid task of exactly size bytes: a titulo of up to 1024 bytes, the rest in
    descripcion (so up to 5150 bytes)."""
    empty = len(task(titulo="", descripcion=""))
    titulo = min(TITULO_MAX, size - empty - 1)
    body = task(titulo="x" * titulo, descripcion="d" * (size - empty - titulo))
    assert len(body) == size and titulo >= 1 and size - empty - titulo <= DESCRIPCION_MAX
    return body


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: limit_requests.py DIR MAX_REQUEST_LINE MAX_HEADER_BYTES MAX_HEADERS "
                 "MAX_BODY")
    out_dir = sys.argv[1]
    max_rl, max_hb, max_h, max_body = (int(a) for a in sys.argv[2:])
    assert DESCRIPCION_MAX + 100 <= max_body < TITULO_MAX + DESCRIPCION_MAX, \
        "the task fields need a body of 4 KB and more; a padded task holds at most 5 KB"
    rows = []

    def row(status, body_sub, desc, data):
        name = "%02d.req" % (len(rows) + 1)
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        rows.append("%s\t%d\t%s\t%s" % (name, status, body_sub, desc))

    # Request line: "GET /health?q=xx...x HTTP/1.1" of max_rl bytes, then one more.
    fixed = len("GET /health?q= HTTP/1.1")
    for extra, status, sub in ((0, 200, '"status"'), (1, 414, '"error"')):
        target = "/health?q=" + "x" * (max_rl - fixed + extra)
        line = "GET %s HTTP/1.1" % target
        assert len(line) == max_rl + extra
        row(status, sub, "request line of %d bytes (limit %d)" % (len(line), max_rl), get(target))

    # ... and a request line that has no end yet: refused as soon as the byte past the
    # limit arrives, not at the header timeout.
    data = ("GET /health?q=" + "x" * (max_rl + 1)).encode()[:max_rl + 1]
    row(414, '"error"', "request line cut after %d bytes, no line end (limit %d)"
        % (len(data), max_rl), data)

    # Header fields: Host plus X-N fields, max_h in all, then one more.
    for count, status, sub in ((max_h, 200, '"status"'), (max_h + 1, 431, '"error"')):
        fields = [("X-F%d" % i, "v") for i in range(1, count)]
        row(status, sub, "%d header fields (limit %d)" % (count, max_h), get("/health", fields))

    # Header bytes: the whole head of max_hb bytes, padded in one field, then one more.
    base = len(get("/health", [("X-Pad", "")]))
    for extra, status, sub in ((0, 200, '"status"'), (1, 431, '"error"')):
        data = get("/health", [("X-Pad", "p" * (max_hb - base + extra))])
        assert len(data) == max_hb + extra
        row(status, sub, "header section of %d bytes (limit %d)" % (len(data), max_hb), data)

    # ... and a head of max_hb bytes without its end: it cannot fit, refused at once.
    data = get("/health", [("X-Pad", "p" * max_hb)])[:max_hb]
    row(431, '"error"', "header section cut after %d bytes, no end (limit %d)"
        % (len(data), max_hb), data)

    # Body by Content-Length: a valid task of max_body bytes, then one of max_body + 1.
    for extra, status, sub in ((0, 201, '"id"'), (1, 413, '"error"')):
        body = padded_task(max_body + extra)
        row(status, sub, "Content-Length body of %d bytes (limit %d)" % (len(body), max_body),
            post(body))

    # Body chunked: the same bodies in three chunks; the limit is on the decoded bytes.
    for extra, status, sub in ((0, 201, '"id"'), (1, 413, '"error"')):
        body = padded_task(max_body + extra)
        third = len(body) // 3
        row(status, sub, "chunked body of %d decoded bytes (limit %d)" % (len(body), max_body),
            post(body, [third, third, len(body) - 2 * third]))

    # Task fields, each at its bounds (bytes of UTF-8).
    def field_rows(name, text_at, text_past, extra_fields):
        for text, status, sub in ((text_at, 201, '"id"'), (text_past, 400, name)):
            fields = dict(extra_fields)
            fields[name] = text
            size = len(text.encode())
            chars = "" if size == len(text) else " (%d characters)" % len(text)
            row(status, sub, "%s of %d bytes%s" % (name, size, chars), post(task(**fields)))

    field_rows("titulo", "x" * TITULO_MAX, "x" * (TITULO_MAX + 1), {})
    # 341 three-byte characters and one ASCII: 1024 bytes, 342 characters; then 1025 bytes.
    field_rows("titulo", "\u20ac" * 341 + "x", "\u20ac" * 341 + "xy", {})
    field_rows("titulo", "x", "", {})
    field_rows("descripcion", "d" * DESCRIPCION_MAX, "d" * (DESCRIPCION_MAX + 1),
               {"titulo": "con descripcion"})
    field_rows("cliente", "c" * CLIENTE_MAX, "c" * (CLIENTE_MAX + 1), {"titulo": "con cliente"})
    for seq_at, seq_past in ((0, -1), (SEQ_MAX, SEQ_MAX + 1)):
        for seq, status, sub in ((seq_at, 201, '"id"'), (seq_past, 400, "seq")):
            row(status, sub, "seq %d" % seq,
                post(task(titulo="seq %d" % seq, cliente="limits", seq=seq)))

    print("\n".join(rows))


if __name__ == "__main__":
    main()
