#!/usr/bin/env python3
"""taskctl_menu.py - drives taskctl's interactive menu through a pseudo-terminal.

usage: taskctl_menu.py TASKCTL FILE
Adds a task from the menu, lists it, quits with 3; then starts again and
quits with end of input (Ctrl-D). Exits 0 when every step showed what it
should, 1 otherwise (printing expected and got), 77 when no pty is available.
"""
import os
import pty
import select
import sys
import time

DEADLINE_S = 10.0


def spawn(argv):
    try:
        pid, fd = pty.fork()
    except OSError as e:
        print("taskctl_menu: no pseudo-terminal: %s" % e, file=sys.stderr)
        sys.exit(77)
    if pid == 0:
        os.execv(argv[0], argv)
    return pid, fd


class Session:
    def __init__(self, argv):
        self.pid, self.fd = spawn(argv)
        self.seen = b""

    def expect(self, text):
        """Reads until text appears (after what earlier expects consumed)."""
        want = text.encode()
        end = time.monotonic() + DEADLINE_S
        while want not in self.seen:
            left = end - time.monotonic()
            if left <= 0:
                fail("timeout waiting for %r" % text, self.seen)
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                fail("end of output waiting for %r" % text, self.seen)
            self.seen += chunk
        cut = self.seen.index(want) + len(want)
        got, self.seen = self.seen[:cut], self.seen[cut:]
        return got

    def send(self, text):
        os.write(self.fd, text.encode())

    def wait(self):
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                # drain whatever is left so the pty closes cleanly
                try:
                    while os.read(self.fd, 4096):
                        pass
                except OSError:
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        os.kill(self.pid, 9)
        fail("taskctl did not exit", self.seen)


def fail(what, output):
    print("taskctl_menu: FAIL: %s\n--- output so far ---\n%s" %
          (what, output.decode(errors="replace")), file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        print("usage: taskctl_menu.py TASKCTL FILE", file=sys.stderr)
        return 2
    taskctl, path = sys.argv[1], sys.argv[2]

    s = Session([taskctl, "-f", path])
    s.expect("choice: ")
    s.send("1\n")
    s.expect("titulo: ")
    s.send("desde el menu \"con\" comillas\n")
    s.expect("descripcion")
    s.send("una descripcion\n")
    got = s.expect("choice: ")
    if b"added task 1: desde el menu \"con\" comillas" not in got:
        fail("no 'added task 1' line", got)
    s.send("1\n")
    s.expect("titulo: ")
    s.send("\n")  # an empty titulo is refused like the server refuses it
    s.expect("descripcion")
    s.send("\n")
    got = s.expect("choice: ")
    if b"titulo" not in got or b"not added" not in got:
        fail("an empty titulo was not refused", got)
    s.send("9\n")
    got = s.expect("choice: ")
    if b"choose 1, 2 or 3" not in got:
        fail("no hint after an unknown choice", got)
    s.send("2\n")
    got = s.expect("choice: ")
    if b"desde el menu" not in got or b"1 task\r\n" not in got:
        fail("the listing does not show the one task", got)
    s.send("3\n")
    code = s.wait()
    if code != 0:
        fail("exit status %d after 3, expected 0" % code, s.seen)

    s = Session([taskctl, "-f", path])
    s.expect("choice: ")
    s.send("\x04")  # end of input at the prompt quits
    code = s.wait()
    if code != 0:
        fail("exit status %d after end of input, expected 0" % code, s.seen)
    print("taskctl_menu: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
