"""Running untrusted generated code for Pass@1.

Every program runs in its own subprocess, in a fresh temporary directory, under resource
limits, and its whole process group is killed afterwards. Two isolation levels exist:

``full`` (when the agent runs as root, the normal container case)
    A small launcher (run by the system ``/usr/bin/python3``) enters new network, mount
    and PID namespaces, so the program has no network at all (not even loopback), sees
    fresh empty tmpfs over ``/tmp``, ``/var/tmp``, ``/dev/shm`` and over every path in
    ``Limits.hidden_paths`` (the repository, the model cache, ``/root``, ``/home``), and
    every process it forks dies with the namespace's PID 1. It then sets the rlimits,
    drops to user ``nobody`` for good (real, effective and saved ids) and runs the
    program in the same interpreter. ``nobody`` cannot read the root-owned virtualenv,
    which is why the system interpreter is used.

``degraded`` (not root, or namespaces unavailable)
    rlimits (CPU, address space, file size, open files, processes), a wall-clock timeout,
    a new session whose process group is killed, and a fresh working directory. There is
    no network isolation and no file-system isolation beyond normal Unix permissions.
    :func:`isolation_level` reports which mode is active, and results carry it.

Results depend only on the program text (never on the pool size), so Pass@1 is the
same whatever the thread count. Programs that do not compile are failed without
starting a process (:func:`_syntax_reject`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SYSTEM_PYTHON = "/usr/bin/python3"
Status = Literal["passed", "failed", "timeout"]


def _default_hidden() -> tuple[str, ...]:
    repo = Path(__file__).resolve().parent.parent
    cache = os.environ.get("KNEXA_CACHE", str(repo / ".knexa" / "cache"))
    return (str(repo), cache, "/root", "/home", "/work")


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 512
    file_mb: int = 1
    open_files: int = 64
    processes: int = 16
    hidden_paths: tuple[str, ...] = field(default_factory=_default_hidden)


@dataclass(frozen=True)
class ExecResult:
    status: Status
    returncode: int | None
    stderr_tail: str
    seconds: float
    isolation: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# The launcher runs as root in the child process (full mode only). It must not import
# anything from the repository: it is executed by the system interpreter.
_LAUNCHER = r"""
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID = 0x00020000, 0x40000000, 0x20000000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 1 << 14, 1 << 18
def check(rc, what):
    if rc != 0:
        sys.stderr.write("sandbox setup failed: %s errno %d\n" % (what, ctypes.get_errno()))
        os._exit(97)
check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
pid = os.fork()
if pid:
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
# PID 1 of the new namespace: everything it forks dies with it.
workdir = os.open(cfg["workdir"], os.O_RDONLY)
check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make-private")
for path in ["/tmp", "/var/tmp", "/dev/shm"] + cfg["hidden"]:
    if os.path.isdir(path):
        mode = b"mode=1777,size=1m" if path in ("/tmp", "/var/tmp", "/dev/shm") else b"mode=000,size=4k"
        check(libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, mode), "mount " + path)
# The real work directory is now shadowed by the fresh /tmp: bind it back at /tmp/sandbox.
os.mkdir("/tmp/sandbox", 0o755)
check(libc.mount(("/proc/self/fd/%d" % workdir).encode(), b"/tmp/sandbox", None, MS_BIND, None), "bind")
os.close(workdir)
os.chdir("/tmp/sandbox")
for res, val in cfg["rlimits"]:
    resource.setrlimit(res, (val, val))
os.setgroups([])
os.setgid(cfg["gid"])
os.setuid(cfg["uid"])
# Privileges are gone for good (real, effective and saved ids): run the program in this
# interpreter rather than paying for a second interpreter start-up.
sys.argv = ["prog.py"]
with open("prog.py", encoding="utf-8") as fh:
    code = compile(fh.read(), "prog.py", "exec")
del cfg, libc, fh
exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
"""


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def isolation_level() -> str:
    """``"full"`` when running as root with the system interpreter present, else ``"degraded"``."""
    return "full" if _is_root() and Path(SYSTEM_PYTHON).exists() else "degraded"


def _rlimits(limits: Limits) -> list[tuple[int, int]]:
    import resource

    mb = 1024 * 1024
    return [
        (resource.RLIMIT_CPU, limits.cpu_s),
        (resource.RLIMIT_AS, limits.memory_mb * mb),
        (resource.RLIMIT_FSIZE, limits.file_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_CORE, 0),
    ]


def _degraded_preexec(rlimits: list[tuple[int, int]]) -> None:
    import resource

    for res, val in rlimits:
        resource.setrlimit(res, (val, val))


_PREEXEC_LOCK = threading.Lock()


def run_program(source: str, limits: Limits | None = None) -> ExecResult:
    """Run ``source`` as an untrusted Python program; it passes when it exits with status 0."""
    limits = limits or Limits()
    level = isolation_level()
    start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="knexa-sbx-"))
    logdir = Path(tempfile.mkdtemp(prefix="knexa-sbx-log-"))
    try:
        (workdir / "prog.py").write_text(source)
        stderr_path = logdir / "stderr"
        with open(stderr_path, "wb") as err:
            if level == "full":
                import pwd

                nobody = pwd.getpwnam("nobody")
                os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
                os.chmod(workdir, 0o700)
                cfg = {
                    "workdir": str(workdir),
                    "hidden": [p for p in limits.hidden_paths if not str(workdir).startswith(p)],
                    "rlimits": _rlimits(limits),
                    "uid": nobody.pw_uid,
                    "gid": nobody.pw_gid,
                    "python": SYSTEM_PYTHON,
                }
                proc = subprocess.Popen(
                    [SYSTEM_PYTHON, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    cwd="/",
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    start_new_session=True,
                )
            else:
                rl = _rlimits(limits)
                with _PREEXEC_LOCK:  # preexec_fn is not safe to run concurrently from threads
                    proc = subprocess.Popen(
                        [sys.executable, "-I", "-S", "prog.py"],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        cwd=workdir,
                        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                        start_new_session=True,
                        preexec_fn=lambda: _degraded_preexec(rl),
                    )
            status: Status
            try:
                rc: int | None = proc.wait(timeout=limits.wall_s)
                status = "passed" if rc == 0 else "failed"
            except subprocess.TimeoutExpired:
                rc, status = None, "timeout"
            finally:
                _kill_group(proc)
        tail = stderr_path.read_bytes()[-2000:].decode("utf-8", "replace")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(logdir, ignore_errors=True)
    # Killed by the CPU limit: SIGXCPU/SIGKILL directly (degraded) or via the launcher's 128 + signal (full).
    cpu_kill = {signal.SIGXCPU, signal.SIGKILL}
    if rc is not None and (-rc in cpu_kill or (level == "full" and rc - 128 in cpu_kill)):
        status = "timeout"
    return ExecResult(status, rc, tail, time.monotonic() - start, level)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


_MAX_SOURCE = 200_000


def _syntax_reject(source: str) -> ExecResult | None:
    """Fail a program that does not even compile, without starting a process.

    Compiling parses but never executes the code, so it is safe to do in the agent's
    process; tiny models emit many such programs, and each would otherwise cost a
    sandboxed interpreter start. The verdict is the same as running it (a SyntaxError
    exits non-zero before any test runs).
    """
    if len(source) > _MAX_SOURCE:
        return ExecResult("failed", None, "program too large", 0.0, "precheck")
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for odd literals: not our business here
            warnings.simplefilter("ignore")
            compile(source, "prog.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return ExecResult("failed", None, f"{type(exc).__name__}: {exc}", 0.0, "precheck")
    return None


class Evaluator:
    """Runs programs over a small worker pool, memoising results by program text.

    Memoisation is sound because a result depends only on the program: the same greedy
    completion of the same problem is never executed twice within an experiment.
    """

    def __init__(self, workers: int = 2, limits: Limits | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.limits = limits or Limits()
        self._cache: dict[str, ExecResult] = {}
        self._lock = threading.Lock()

    def run_many(self, programs: Sequence[str]) -> list[ExecResult]:
        digests = [hashlib.sha256(p.encode()).hexdigest() for p in programs]
        with self._lock:
            todo = {d: p for d, p in zip(digests, programs, strict=True) if d not in self._cache}
        for d, src in list(todo.items()):
            rejected = _syntax_reject(src)
            if rejected is not None:
                with self._lock:
                    self._cache[d] = rejected
                del todo[d]
        if todo:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                results = list(pool.map(lambda src: run_program(src, self.limits), todo.values()))
            with self._lock:
                self._cache.update(zip(todo.keys(), results, strict=True))
        with self._lock:
            return [self._cache[d] for d in digests]

    def pass_rate(self, programs: Sequence[str]) -> float:
        if not programs:
            return 0.0
        return sum(r.passed for r in self.run_many(programs)) / len(programs)
