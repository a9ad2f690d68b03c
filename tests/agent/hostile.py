"""Hostile programs for the sandbox (standard library only: also run as ``nobody``).

Each case is a program written to forge a pass or to escape. A program that finds
something it must not prints ``LEAK`` to stderr, which the tests look for. ``must_fail``
cases must never pass; the others must be contained (checked from outside as well).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    tests: str
    must_fail: bool


GOOD = "def f(x):\n    return x + 1\n"
TESTS = "assert f(1) == 2\nassert f(41) == 42\n"

_SCAN = """
import os, sys
needle = {needle!r}[::-1].encode()
me = str(os.getpid())
seen = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit() or pid == me:
        continue
    for name in ("environ", "cmdline", "mem"):
        try:
            with open("/proc/%s/%s" % (pid, name), "rb") as fh:
                if name == "mem":
                    for line in open("/proc/%s/maps" % pid):
                        lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
                        try:
                            fh.seek(lo)
                            if needle in fh.read(min(hi - lo, 1 << 24)):
                                print("LEAK mem", pid, file=sys.stderr)
                        except (OSError, OverflowError, ValueError, MemoryError):
                            pass
                elif needle in fh.read():
                    print("LEAK", name, pid, file=sys.stderr)
            seen += 1
        except OSError:
            pass
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
    except OSError:
        fds = []
    for fd in fds:
        try:
            fdn = os.open("/proc/%s/fd/%s" % (pid, fd), os.O_RDONLY | os.O_NONBLOCK)
            data = os.read(fdn, 1 << 20)
            if needle in data:
                print("LEAK fd", pid, fd, file=sys.stderr)
        except OSError:
            pass
for top in os.listdir("/"):
    if top in ("proc", "sys", "usr", "dev") or os.path.islink("/" + top):
        continue
    for root, dirs, files in os.walk("/" + top):
        for f in files:
            try:
                if needle in open(os.path.join(root, f), "rb").read(1 << 24):
                    print("LEAK file", root, f, file=sys.stderr)
            except (OSError, MemoryError):
                pass
print("SCANNED", seen, file=sys.stderr)
"""


def cases(*, marker: str, port: int, target_pid: int, survivor: str, tmp_mb: int) -> list[Case]:
    """The hostile programs. ``marker`` appears in the tests only (the program holds it
    reversed); ``port`` is a loopback listener; ``target_pid`` is the caller's pid, which
    must receive no signal; ``survivor`` tags a process that must not outlive its run."""
    hidden = f"# {marker}\n" + TESTS
    hex32 = "0123456789abcdef" * 2
    return [
        Case("systemexit-before-tests", GOOD + "raise SystemExit(0)\n", TESTS, True),
        Case("os-exit-before-tests", "import os\n" + GOOD + "os._exit(0)\n", TESTS, True),
        Case(
            "os-exit-inside-a-test",
            "import os\ndef f(x):\n    os._exit(0)\n",
            TESTS,
            True,
        ),
        Case(
            "sys-exit-inside-a-test",
            "import sys\ndef f(x):\n    sys.exit(0)\n",
            TESTS,
            True,
        ),
        Case(
            "always-equal-result",
            "class Eq(int):\n    def __eq__(self, o):\n        return True\n"
            "    __hash__ = int.__hash__\ndef f(x):\n    return Eq(0)\n",
            TESTS,
            True,
        ),
        Case(
            "shadow-a-builtin-the-tests-use",
            "def abs(x):\n    return 0\ndef isinstance(x, t):\n    return True\ndef f(x):\n    return 99\n",
            "assert abs(f(1) - 2) < 1e-9\nassert isinstance(f(1), str)\n",
            True,
        ),
        Case(
            "kill-the-harness-then-exit-0",
            "import os, signal\nfor p in (os.getppid(), 1, -1):\n    try:\n"
            "        os.kill(p, signal.SIGKILL)\n    except OSError:\n        pass\n"
            "def f(x):\n    return 0\nos._exit(0)\n",
            TESTS,
            True,
        ),
        Case(
            "look-alike-nonce-output",
            "import os, sys\nmsg = (" + repr(hex32) + " * 4 + '\\n').encode()\n"
            "for fd in range(256):\n    try:\n        os.write(fd, msg)\n    except OSError:\n        pass\n"
            "print(" + repr(hex32) + ")\nprint('passed', file=sys.stderr)\ndef f(x):\n    return 0\n"
            "os._exit(0)\n",
            TESTS,
            True,
        ),
        Case(
            "holder-of-other-tests",
            "import time\ndef f(x):\n    time.sleep(1.5)\n    return x + 1\n",
            hidden,
            False,
        ),
        Case(
            "read-the-tests",
            "try:\n    print(open('tests.py').read(), open('prog.py').read())\nexcept OSError:\n    pass\n"
            + _SCAN.format(needle=marker[::-1])
            + "def f(x):\n    return 0\n",
            hidden,
            True,
        ),
        Case(
            "read-proc-environ",
            "import os, sys\nkey = ('KNEXA_' + 'PASSWORD').encode()\n"
            "for pid in os.listdir('/proc'):\n    try:\n"
            "        data = open('/proc/%s/environ' % pid, 'rb').read()\n"
            "    except OSError:\n        continue\n"
            "    if key in data:\n        print('LEAK', pid, data, file=sys.stderr)\n"
            "print('ENV', sorted(os.environ), file=sys.stderr)\n"
            "for path in ('/root', '/home', '/work', '/etc/passwd', '/run', '/var'):\n"
            "    if os.path.exists(path):\n        print('LEAK path', path, file=sys.stderr)\n" + GOOD,
            TESTS,
            False,
        ),
        Case(
            "loopback-connect",
            "import socket, sys\ntry:\n"
            f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    s.sendall(b'leak')\n    print('LEAK connected', file=sys.stderr)\n"
            "except OSError as exc:\n    print('refused', exc, file=sys.stderr)\n" + GOOD,
            TESTS,
            False,
        ),
        Case(
            "setsid-survivor",
            "import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        os.execv('/usr/bin/sleep', ['sleep', '30', {survivor!r}])\n    os._exit(0)\n" + GOOD,
            TESTS,
            False,
        ),
        Case(
            "fork-bomb",
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            TESTS,
            True,
        ),
        Case(
            "memory-bomb",
            "x = [bytearray(64 * 1024 * 1024) for _ in range(64)]\n" + GOOD,
            TESTS,
            True,
        ),
        Case(
            "disk-fill",
            "import os, sys\ntotal = 0\nfor d in ('/tmp', '/dev/shm', '/', '/dev', '/usr'):\n"
            "    for i in range(4096):\n"
            "        try:\n            with open(os.path.join(d, 'fill-%d' % i), 'wb') as fh:\n"
            "                fh.write(b'x' * (1 << 20))\n            total += 1\n        except OSError:\n"
            f"            break\nif total > 2 * ({tmp_mb} + 1):\n"
            "    print('LEAK wrote', total, file=sys.stderr)\n"
            "print('WROTE', total, file=sys.stderr)\n" + GOOD,
            TESTS,
            False,
        ),
        Case(
            "signal-the-parent",
            "import os, signal\n"
            f"for p in (os.getppid(), {target_pid}, -1):\n    try:\n        os.kill(p, signal.SIGUSR1)\n"
            "    except OSError:\n        pass\n" + GOOD,
            TESTS,
            False,
        ),
    ]
