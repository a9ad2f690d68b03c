"""Running untrusted generated code for Pass@1.

A :class:`Program` is two texts: the untrusted ``source`` (prompt + completion) and the
trusted ``tests`` that decide whether it passes. A pass means that every test ran and
succeeded; nothing the program does can produce one otherwise:

* The tests are never written to a file and never enter the program's memory. Inside the
  sandbox a trusted *harness* forks the program's process first, and only then reads the
  tests and a fresh per-run nonce from its socket to the caller. The harness is
  non-dumpable, so the program (same uid, no capabilities) can neither ptrace it nor read
  its ``/proc/PID/mem`` or descriptors.
* The tests run in the harness. Each call of a function the program defined is sent to the
  program's process, and only plain values (``None``, bool, int, float, complex, str,
  bytes, list, tuple, dict, set, frozenset; exact types) come back, decoded by the harness:
  a returned object with a doctored ``__eq__`` cannot exist on the harness side.
* Only after the last test does the harness send the nonce, on a socket the program's
  process closed before running a line of the program. The caller counts a pass only when
  exactly the nonce arrives: exiting early (``SystemExit``, ``os._exit``), killing or
  stopping the harness, or printing look-alike text anywhere are all failures.

Isolation (:func:`isolation_level`):

``full``
    bubblewrap (``bwrap``), which works without root. One long-lived *zygote* per worker
    runs in new user, PID, network, IPC, UTS and cgroup namespaces, sees ``/usr`` read-only
    and nothing else of the host (no repository, model cache, ``/root``, ``/home``,
    ``/etc``, ``/run``), with no network at all (not even loopback) and an empty
    environment. For each program it forks into fresh PID, mount and IPC namespaces, where
    the harness is PID 1: it mounts a private size-capped tmpfs over ``/tmp`` and
    ``/dev/shm`` (the only writable paths) and a ``/proc`` showing only the program's own
    processes (no ``/proc/PPID/environ``, nobody to signal), drops every capability, sets
    the rlimits, and forks the program. When the harness exits, the kernel kills every
    process of that namespace, including ones that called ``setsid``. The process limit is
    counted per user namespace, so nothing of one worker can starve another. Forking a
    warm zygote instead of starting bubblewrap and an interpreter per program is what
    keeps the throughput. Run as root, the zygote starts as ``nobody`` (root ignores the
    process limit).
``unsafe``
    bubblewrap cannot create namespaces here. :func:`run_program` then refuses with
    :class:`SandboxUnavailableError` unless called with ``unsafe=True``, which runs the same
    harness (same verdict rules, rlimits, empty environment, a fresh folder) without
    namespaces: the program can read what the user can, reach loopback and outlive its run.

Results depend only on the program (never on the pool size), so Pass@1 is the same
whatever the thread count. Programs that do not compile are failed without starting a
process (:func:`_syntax_reject`).
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import functools
import hashlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.errors import AgentError

SYSTEM_PYTHON = "/usr/bin/python3"
BWRAP = "/usr/bin/bwrap"
Status = Literal["passed", "failed", "timeout"]


class SandboxError(AgentError):
    """Base of the errors raised by the sandbox."""


class SandboxUnavailableError(SandboxError, RuntimeError):
    """No isolation is possible here and the caller did not opt in to running unsafely."""


class Isolation(enum.StrEnum):
    FULL = "full"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Program:
    """Untrusted ``source`` and the trusted ``tests`` (Python statements) that judge it.

    The tests run after the source's top level has finished, with every function the
    source defined in scope under its own name (called in the program's process).
    """

    source: str
    tests: str = ""

    @property
    def script(self) -> str:
        """Source and tests as one text, for trusted in-process use only (never sandboxed)."""
        return self.source + "\n\n" + self.tests + "\n"

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (self.source, self.tests):
            data = part.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "big") + data)
        return h.hexdigest()


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 512
    file_mb: int = 1
    tmp_mb: int = 16
    open_files: int = 64
    processes: int = 16


@dataclass(frozen=True)
class ExecResult:
    status: Status
    stderr_tail: str
    seconds: float
    isolation: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# The zygote, run by the system interpreter inside bubblewrap (one per worker). It never
# reads a job: for each one it receives only descriptors (the job's socket and its stderr
# file) and forks. The fork (J) enters fresh PID, mount and IPC namespaces and forks the
# harness (H), PID 1 there: H mounts private tmpfs over /tmp and /dev/shm and a /proc of its
# own, drops every capability, reads the limits, forks the program's process (P), and only
# then reads the source, tests and nonce. When H exits, the kernel kills everything in its
# namespace. It imports nothing from the repository. Messages are a 4-byte length and
# JSON; values use the tagged encoding of ``enc``/``dec``, so decoding builds plain values.
_ZYGOTE = r"""
import builtins, ctypes, json, os, resource, signal, socket, struct, sys, traceback
# Loaded once here so that each program's fork finds them imported (HumanEval prompts
# import typing); the program can change only its own copy.
import collections, functools, heapq, itertools, math, re, string, typing
cfg = json.loads(sys.argv[1])
FULL, MAX_MSG = cfg["full"], 1 << 24
libc = ctypes.CDLL(None, use_errno=True)
ctl = socket.socket(fileno=cfg["ctl_fd"])
JOB = None  # the job's socket, in J and H

def check(rc, what):
    if rc != 0:
        if JOB is not None:
            JOB.sendall(("E%s failed: errno %d" % (what, ctypes.get_errno())).encode())
        os._exit(97)

def send(sock, obj):
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)

def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)

def recv(sock):
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    if n > MAX_MSG:
        raise ValueError("message too large")
    return json.loads(recv_exact(sock, n))

def enc(x):
    t = type(x)
    if x is None or t is bool or t is str or t is int:
        return x
    if t is float:
        return {"f": x.hex()}
    if t is complex:
        return {"c": [x.real.hex(), x.imag.hex()]}
    if t is bytes:
        return {"b": x.hex()}
    if t is list:
        return [enc(v) for v in x]
    if t is tuple:
        return {"t": [enc(v) for v in x]}
    if t is dict:
        return {"d": [[enc(k), enc(v)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "z": [enc(v) for v in x]}
    raise TypeError("unsupported value of type " + t.__name__)

def dec(x):
    t = type(x)
    if x is None or t is bool or t is str or t is int:
        return x
    if t is list:
        return [dec(v) for v in x]
    if t is not dict or len(x) != 1:
        raise ValueError("bad value")
    (tag, v), = x.items()
    if tag == "f":
        return float.fromhex(v)
    if tag == "c":
        return complex(float.fromhex(v[0]), float.fromhex(v[1]))
    if tag == "b":
        return bytes.fromhex(v)
    if tag == "t":
        return tuple(dec(e) for e in v)
    if tag == "d":
        return {dec(k): dec(e) for k, e in v}
    if tag == "s":
        return {dec(e) for e in v}
    if tag == "z":
        return frozenset(dec(e) for e in v)
    raise ValueError("bad tag")

def program(theirs):
    # P: untrusted from the exec on. It holds only its end of the socket to H.
    try:
        source = recv(theirs)
        ns = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(source, "prog.py", "exec"), ns)
        send(theirs, sorted(k for k, v in list(ns.items()) if callable(v) and not k.startswith("__")))
        while True:
            name, args, kwargs = recv(theirs)
            try:
                out = ["ok", enc(ns[name](*dec(args), **dec(kwargs)))]
            except BaseException as exc:
                out = ["raise", type(exc).__name__, str(exc)[:500]]
            send(theirs, out)
    except EOFError:
        os._exit(0)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)

def harness(job, err):
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG SIGKILL: die with J
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans of the program come back here
    if FULL:
        check(libc.mount(b"none", b"/", None, (1 << 14) | (1 << 18), None), "private")
    limits = recv(job)
    if FULL:
        size = ("size=%d,mode=1777" % limits["tmp_bytes"]).encode()
        check(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 2 | 4, size), "tmp")
        check(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", 2 | 4, size), "shm")
        check(libc.mount(b"proc", b"/proc", b"proc", 2 | 4 | 8, None), "proc")
        check(libc.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()), "capset")
        os.chdir("/tmp")
    else:
        os.chdir(limits["workdir"])
    check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")
    check(libc.prctl(4, 0, 0, 0, 0), "dumpable")  # no ptrace, no /proc/PID/mem or fd of H
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    os.close(null)
    os.close(err)
    for res, val in limits["rlimits"]:
        resource.setrlimit(res, (val, val))
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        job.close()
        os.setpgid(0, 0)
        program(theirs)
    theirs.close()

    def finish(code):
        try:
            job.sendall(code)
        finally:
            if not FULL:  # no PID namespace to end the program: kill its group, reap it all
                try:
                    os.killpg(pid, 9)
                except OSError:
                    pass
                try:
                    while True:
                        os.waitpid(-1, 0)
                except OSError:
                    pass
            os._exit(0)

    signal.signal(signal.SIGALRM, lambda *_: finish(b"T"))
    signal.setitimer(signal.ITIMER_REAL, limits["wall_s"])
    # P exists already: only now read what it must never see.
    work = recv(job)

    def died():
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (9, 24):
            sys.stderr.write("program killed by the CPU limit\n")
            finish(b"T")
        sys.stderr.write("program ended before the tests finished\n")
        finish(b"F")

    def proxy(name):
        def call(*args, **kwargs):
            try:
                send(ours, [name, enc(args), enc(kwargs)])
                reply = recv(ours)
            except (EOFError, OSError, ValueError):
                died()
            if reply[0] == "ok":
                return dec(reply[1])
            kind = getattr(__builtins__, str(reply[1]), None)
            if isinstance(kind, type) and issubclass(kind, Exception):
                raise kind(str(reply[2]))
            raise RuntimeError("%s: %s" % (reply[1], reply[2]))
        call.__name__ = name
        return call

    try:
        send(ours, work["source"])
        names = recv(ours)
    except (EOFError, OSError, ValueError):
        died()
    scope = {"__name__": "__main__"}
    for name in names if type(names) is list else ():
        # The tests keep the real builtins: a program's own `abs` or `len` must not judge it.
        if type(name) is str and not name.startswith("__") and not hasattr(builtins, name):
            scope[name] = proxy(name)
    try:
        exec(compile(work["tests"], "tests.py", "exec"), scope)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        finish(b"F")
    sys.stderr.flush()
    finish(work["nonce"].encode())

signal.signal(signal.SIGCHLD, signal.SIG_IGN)
while True:
    try:
        _, fds, _, _ = socket.recv_fds(ctl, 1, 2)
    except OSError:
        os._exit(0)
    if len(fds) != 2:
        os._exit(0)
    if os.fork() == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        libc.prctl(1, 9, 0, 0, 0)  # die with the zygote
        ctl.close()
        job, err = socket.socket(fileno=fds[0]), fds[1]
        JOB = job
        if FULL:
            check(libc.unshare(0x00020000 | 0x20000000 | 0x08000000), "unshare")
        h = os.fork()
        if h == 0:
            harness(job, err)
        job.close()
        os.close(err)
        os.waitpid(h, 0)
        os._exit(0)
    for fd in fds:
        os.close(fd)
"""


def _bwrap_args() -> list[str]:
    # The zygote keeps capabilities in its own user namespace only to build each job's
    # namespaces; the harness drops them all before the program starts.
    return [
        BWRAP,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--disable-userns",
        "--cap-add",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--remount-ro",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--remount-ro",
        "/",
        "--chdir",
        "/",
    ]


_UNSAFE_UIDS = itertools.count(1_999_000_000)


def _drop_to(full: bool) -> tuple[int, int] | None:
    """The ids the zygote runs as: root ignores the process limit, so as root a full sandbox
    starts as ``nobody`` (its process count is then per user namespace) and an unsafe one as
    a uid of its own (the count is per uid there, and ``nobody`` has other processes)."""
    if os.geteuid() != 0:
        return None
    if not full:
        uid = next(_UNSAFE_UIDS)
        return (uid, uid)
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return (65534, 65534)
    return (entry.pw_uid, entry.pw_gid)


def _interpreter() -> str:
    return SYSTEM_PYTHON if Path(SYSTEM_PYTHON).exists() else sys.executable


class _ZygoteDiedError(SandboxError):
    """The zygote was gone before a job could be handed to it (it is then replaced)."""


class _Zygote:
    """One long-lived sandbox process that forks a fresh namespace per program."""

    def __init__(self, full: bool) -> None:
        self.full = full
        parent, child = socket.socketpair()
        ids = self.ids = _drop_to(full)
        extra: dict[str, Any] = {}
        if ids is not None:
            extra = {"user": ids[0], "group": ids[1], "extra_groups": []}
        cfg = json.dumps({"full": full, "ctl_fd": child.fileno()})
        prefix = _bwrap_args() if full else []
        try:
            self.proc = subprocess.Popen(
                [*prefix, _interpreter(), "-I", "-S", "-c", _ZYGOTE, cfg],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                env={},
                start_new_session=True,
                pass_fds=(child.fileno(),),
                **extra,
            )
        finally:
            child.close()
        self.ctl = parent

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.ctl.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def run(self, program: Program, limits: Limits) -> tuple[Status, str]:
        nonce = secrets.token_hex(16)
        ours, theirs = socket.socketpair()
        workdir = None if self.full else tempfile.mkdtemp(prefix="knexa-sbx-")
        try:
            with tempfile.TemporaryFile() as err:
                if workdir is not None and self.ids is not None:
                    os.chown(workdir, *self.ids)
                try:
                    socket.send_fds(self.ctl, [b"J"], [theirs.fileno(), err.fileno()])
                except OSError as exc:
                    raise _ZygoteDiedError from exc
                finally:
                    theirs.close()
                mb = 1024 * 1024
                first = {
                    # Unsafe and not root: the process count would be the caller's own.
                    "rlimits": _rlimits(limits, nproc=self.full or self.ids is not None),
                    "wall_s": limits.wall_s,
                    "tmp_bytes": limits.tmp_mb * mb,
                    "workdir": workdir,
                }
                second = {"source": program.source, "tests": program.tests, "nonce": nonce}
                verdict = b""
                deadline = time.monotonic() + limits.wall_s + 5.0
                try:
                    ours.settimeout(limits.wall_s + 5.0)
                    ours.sendall(_frame(first) + _frame(second))
                    while len(verdict) < 512:
                        ours.settimeout(max(0.01, deadline - time.monotonic()))
                        chunk = ours.recv(512)
                        if not chunk:
                            break
                        verdict += chunk
                except TimeoutError:
                    self.close()  # something is stuck: the zygote and all its jobs go
                    verdict = b"T"
                except OSError:
                    pass
                err.seek(0, os.SEEK_END)
                size = err.tell()
                err.seek(max(0, size - 2000))
                tail = err.read().decode("utf-8", "replace")
        finally:
            ours.close()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        if verdict == nonce.encode():
            return "passed", tail
        if verdict.startswith(b"E"):
            raise SandboxError("sandbox setup failed: " + verdict[1:].decode("ascii", "replace"))
        return ("timeout" if verdict == b"T" else "failed"), tail


def _frame(obj: object) -> bytes:
    data = json.dumps(obj).encode()
    return len(data).to_bytes(4, "big") + data


class _Pool:
    """Idle zygotes, one per concurrent caller at most; started on demand."""

    def __init__(self) -> None:
        self._idle: list[_Zygote] = []
        self._lock = threading.Lock()

    def run(self, program: Program, limits: Limits, full: bool) -> tuple[Status, str]:
        with self._lock:
            zygote = next((z for z in self._idle if z.full == full), None)
            if zygote is not None:
                self._idle.remove(zygote)
        if zygote is None or not zygote.alive():
            # bubblewrap's --die-with-parent follows the *thread* that started it: start
            # every zygote from one thread that lives as long as the process.
            zygote = _SPAWNER.submit(_Zygote, full).result()
        try:
            try:
                return zygote.run(program, limits)
            except _ZygoteDiedError:
                zygote.close()
                zygote = _SPAWNER.submit(_Zygote, full).result()
                return zygote.run(program, limits)
        finally:
            if zygote.alive():
                with self._lock:
                    self._idle.append(zygote)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for z in idle:
            z.close()


_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="knexa-sandbox-spawner")
_POOL = _Pool()
atexit.register(_POOL.close)


@functools.cache
def _probe(bwrap: str, python: str) -> bool:
    """Whether a full sandbox can be built here: run one program in one and see it pass."""
    if not (Path(bwrap).exists() and Path(python).exists()):
        return False
    try:
        zygote = _SPAWNER.submit(_Zygote, True).result()
    except OSError:
        return False
    try:
        probe = Program("import os\ndef pid():\n    return os.getpid()\n", "assert pid() == 2\n")
        status, _ = zygote.run(probe, Limits())
        return status == "passed"
    except OSError:
        return False
    finally:
        zygote.close()


def isolation_level() -> Isolation:
    """What this machine gives: ``full`` when bubblewrap can build the sandbox, else ``unsafe``."""
    return Isolation.FULL if _probe(BWRAP, SYSTEM_PYTHON) else Isolation.UNSAFE


def _rlimits(limits: Limits, *, nproc: bool = True) -> list[tuple[int, int]]:
    import resource

    mb = 1024 * 1024
    out = [
        (resource.RLIMIT_CPU, limits.cpu_s),
        (resource.RLIMIT_AS, limits.memory_mb * mb),
        (resource.RLIMIT_FSIZE, limits.file_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files),
        # Counted per user namespace: the zygote, the job's fork and the harness count too.
        (resource.RLIMIT_NPROC, limits.processes + 4),
        (resource.RLIMIT_CORE, 0),
    ]
    return [r for r in out if nproc or r[0] != resource.RLIMIT_NPROC]


def run_program(program: Program | str, limits: Limits | None = None, *, unsafe: bool = False) -> ExecResult:
    """Run ``program`` (a bare string is a program without tests) and judge it.

    Passed means: the source's top level finished and then every test ran and succeeded.
    Raises :class:`SandboxUnavailableError` when no isolation is possible and ``unsafe``
    is false.
    """
    if isinstance(program, str):
        program = Program(program)
    limits = limits or Limits()
    level = isolation_level()
    if level is Isolation.UNSAFE and not unsafe:
        raise SandboxUnavailableError(
            f"cannot isolate programs here ({BWRAP} cannot create namespaces; `knexa org doctor` "
            "says why); pass unsafe=True (--unsafe-sandbox) to run them without isolation"
        )
    start = time.monotonic()
    status, tail = _POOL.run(program, limits, level is Isolation.FULL)
    return ExecResult(status, tail, time.monotonic() - start, str(level))


_MAX_SOURCE = 200_000


def _syntax_reject(program: Program) -> ExecResult | None:
    """Fail a program that does not even compile, without starting a process.

    Compiling parses but never executes the code, so it is safe to do in the agent's
    process; tiny models emit many such programs, and each would otherwise cost a
    sandboxed interpreter start. The verdict is the same as running it (a SyntaxError
    ends the program before any test runs).
    """
    if len(program.source) + len(program.tests) > _MAX_SOURCE:
        return ExecResult("failed", "program too large", 0.0, "precheck")
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for odd literals: not our business here
            warnings.simplefilter("ignore")
            compile(program.source, "prog.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return ExecResult("failed", f"{type(exc).__name__}: {exc}", 0.0, "precheck")
    return None


class Evaluator:
    """Runs programs over a small worker pool, memoising results by program (source and tests).

    Memoisation is sound because a result depends only on the program: the same greedy
    completion of the same problem is never executed twice within an experiment.
    ``unsafe`` allows running without isolation where none is possible (see module doc).
    """

    def __init__(self, workers: int = 2, limits: Limits | None = None, *, unsafe: bool = False) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.limits = limits or Limits()
        self.unsafe = unsafe
        self._cache: dict[str, ExecResult] = {}
        self._lock = threading.Lock()

    def run_many(self, programs: Sequence[Program | str]) -> list[ExecResult]:
        progs = [Program(p) if isinstance(p, str) else p for p in programs]
        digests = [p.digest for p in progs]
        with self._lock:
            todo = {d: p for d, p in zip(digests, progs, strict=True) if d not in self._cache}
        for d, prog in list(todo.items()):
            rejected = _syntax_reject(prog)
            if rejected is not None:
                with self._lock:
                    self._cache[d] = rejected
                del todo[d]
        if todo:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                results = list(
                    pool.map(lambda p: run_program(p, self.limits, unsafe=self.unsafe), todo.values())
                )
            with self._lock:
                self._cache.update(zip(todo.keys(), results, strict=True))
        with self._lock:
            return [self._cache[d] for d in digests]

    def pass_rate(self, programs: Sequence[Program | str]) -> float:
        if not programs:
            return 0.0
        return sum(r.passed for r in self.run_many(programs)) / len(programs)
