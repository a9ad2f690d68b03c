"""Hostile programs against the sandbox, run as root and as the unprivileged ``nobody``.

Every case must fail or be contained. Containment is also checked from outside: no
process outlives its run, nothing reaches a loopback listener, no signal reaches the
caller, no secret of the caller's environment or of any test text shows up in what the
programs print.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from agent import sandbox
from agent.sandbox import Evaluator, Isolation, Limits, Program, isolation_level
from tests.agent import hostile

LIMITS = Limits(cpu_s=2, wall_s=6.0, memory_mb=256, tmp_mb=4)
HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(isolation_level() is not Isolation.FULL, reason="bubblewrap unavailable")

# Run by the system interpreter as nobody, from a copy of the sandbox's modules.
_RUNNER = """
import json, os, signal, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent import sandbox
got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
cases = json.loads(sys.stdin.read())
limits = sandbox.Limits(**cases.pop(0))
assert sandbox.isolation_level() is sandbox.Isolation.FULL, sandbox.isolation_level()
progs = [sandbox.Program(c["source"].replace("@PID@", str(os.getpid())), c["tests"]) for c in cases]
out = [{"status": r.status, "stderr": r.stderr_tail} for r in sandbox.Evaluator(2, limits).run_many(progs)]
print(json.dumps({"results": out, "signals": len(got)}))
"""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    yield srv
    srv.close()


def _processes_tagged(tag: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if tag.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                pass
    return found


def _run_as_root(cs: list[hostile.Case]) -> tuple[list[dict[str, str]], int]:
    got: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
    try:
        progs = [Program(c.source.replace("@PID@", str(os.getpid())), c.tests) for c in cs]
        results = Evaluator(workers=2, limits=LIMITS).run_many(progs)
    finally:
        signal.signal(signal.SIGUSR1, old)
    return [{"status": r.status, "stderr": r.stderr_tail} for r in results], len(got)


def _run_as_nobody(cs: list[hostile.Case], secret: str) -> tuple[list[dict[str, str]], int]:
    tmp = Path(tempfile.mkdtemp(prefix="knexa-hostile-"))  # pytest's own tmp is root-only
    try:
        return _run_in(tmp, cs, secret)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_in(tmp: Path, cs: list[hostile.Case], secret: str) -> tuple[list[dict[str, str]], int]:
    tmp.chmod(0o755)
    package = tmp / "agent"  # the two standard-library modules, without the package's heavy imports
    package.mkdir(mode=0o755)
    (package / "__init__.py").write_text("")
    shutil.copy(Path(sandbox.__file__), package / "sandbox.py")
    shutil.copy(Path(sandbox.__file__).with_name("errors.py"), package / "errors.py")
    (tmp / "runner.py").write_text(_RUNNER)
    payload = json.dumps([asdict(LIMITS), *[{"source": c.source, "tests": c.tests} for c in cs]])
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            str(tmp / "runner.py"),
        ],
        input=payload,
        capture_output=True,
        text=True,
        cwd=tmp,
        env={"PATH": "/usr/bin:/bin", "KNEXA_PASSWORD": secret},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data["results"], int(data["signals"])


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_hostile_programs_fail_or_are_contained(
    user: str, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    if user == "root" and os.geteuid() != 0:
        pytest.skip("not root")
    if user == "nobody" and (os.geteuid() != 0 or shutil.which("setpriv") is None):
        pytest.skip("dropping to nobody needs root and setpriv")
    marker = "knexa-hidden-test-" + secrets.token_hex(8)
    survivor = "knexa-survivor-" + secrets.token_hex(8)
    secret = "hunter2-" + secrets.token_hex(8)
    monkeypatch.setenv("KNEXA_PASSWORD", secret)
    cs = hostile.cases(
        marker=marker,
        port=listener.getsockname()[1],
        target_pid=-999_999,  # replaced by @PID@ below: the caller's own pid
        survivor=survivor,
        tmp_mb=LIMITS.tmp_mb,
    )
    cs = [hostile.Case(c.name, c.source.replace("-999999", "@PID@"), c.tests, c.must_fail) for c in cs]
    results, signals = _run_as_root(cs) if user == "root" else _run_as_nobody(cs, secret)
    by_name = dict(zip([c.name for c in cs], results, strict=True))
    for case, res in zip(cs, results, strict=True):
        assert "LEAK" not in res["stderr"], (case.name, res["stderr"])
        assert secret not in res["stderr"], case.name
        assert marker not in res["stderr"], case.name
        if case.must_fail:
            assert res["status"] != "passed", (case.name, res)
    # The contained cases did run (the checks above are not vacuous) ...
    assert "SCANNED" in by_name["read-the-tests"]["stderr"]
    assert "refused" in by_name["loopback-connect"]["stderr"]
    assert "WROTE" in by_name["disk-fill"]["stderr"]
    assert "ENV ['LC_CTYPE', 'PWD']" in by_name["read-proc-environ"]["stderr"]
    # ... and honest ones pass despite everything the others did.
    for name in (
        "holder-of-other-tests",
        "read-proc-environ",
        "loopback-connect",
        "setsid-survivor",
        "disk-fill",
    ):
        assert by_name[name]["status"] == "passed", (name, by_name[name])
    # From outside: no signal, no connection, no survivor, no file left in the host's /tmp.
    assert signals == 0
    with pytest.raises(TimeoutError):
        listener.accept()
    assert _processes_tagged(survivor) == []
    assert not list(Path("/tmp").glob("fill-*"))
    assert Evaluator(workers=1, limits=LIMITS).run_many([Program(hostile.GOOD, hostile.TESTS)])[0].passed


def test_a_pass_needs_every_test_to_run() -> None:
    ev = Evaluator(workers=1, limits=LIMITS)
    good, wrong_last = ev.run_many(
        [
            Program(hostile.GOOD, hostile.TESTS),
            Program(hostile.GOOD, hostile.TESTS + "assert f(0) == 0\n"),
        ]
    )
    assert good.passed
    assert not wrong_last.passed
    assert "AssertionError" in wrong_last.stderr_tail


def test_results_cross_as_plain_values_only() -> None:
    src = (
        "def f(kind):\n"
        "    return {'t': (1, 2.5), 's': {1, 2}, 'b': b'x', 'n': None, 'c': 1j, 'z': frozenset()}[kind]\n"
    )
    tests = (
        "assert f('t') == (1, 2.5) and type(f('t')) is tuple\nassert f('s') == {1, 2}\n"
        "assert f('b') == b'x'\n"
        "assert f('n') is None\nassert f('c') == 1j\nassert f('z') == frozenset()\n"
    )
    assert Evaluator(workers=1, limits=LIMITS).run_many([Program(src, tests)])[0].passed
    generator = Program("def f(x):\n    return (i for i in range(x))\n", "assert list(f(2)) == [0, 1]\n")
    res = Evaluator(workers=1, limits=LIMITS).run_many([generator])[0]
    assert not res.passed
    assert "unsupported value" in res.stderr_tail


def test_exceptions_cross_by_builtin_type() -> None:
    src = "def f(x):\n    raise ValueError('no')\n"
    tests = "try:\n    f(1)\nexcept ValueError as e:\n    assert str(e) == 'no'\n"
    tests += "else:\n    raise AssertionError\n"
    assert Evaluator(workers=1, limits=LIMITS).run_many([Program(src, tests)])[0].passed


def test_the_interpreter_of_the_sandbox_is_not_the_agents() -> None:
    res = Evaluator(workers=1, limits=LIMITS).run_many(
        [
            Program(
                "import sys\ndef exe():\n    return sys.executable\n", "assert exe() == '/usr/bin/python3'\n"
            )
        ]
    )[0]
    assert res.passed, res.stderr_tail
    assert sys.executable != "/usr/bin/python3"
