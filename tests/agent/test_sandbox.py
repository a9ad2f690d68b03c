"""The Pass@1 sandbox against hostile programs (real subprocesses, real limits)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent import sandbox
from agent.sandbox import (
    Evaluator,
    Isolation,
    Limits,
    Program,
    SandboxError,
    SandboxUnavailableError,
    isolation_level,
    run_program,
)

FAST = Limits(cpu_s=2, wall_s=4.0, memory_mb=256)


def test_correct_program_passes_and_wrong_program_fails() -> None:
    ok = run_program("def f(x):\n    return x + 1\n\nassert f(1) == 2\n", FAST)
    bad = run_program("def f(x):\n    return x - 1\n\nassert f(1) == 2\n", FAST)
    assert ok.passed
    assert not bad.passed
    assert bad.status == "failed"
    assert "AssertionError" in bad.stderr_tail


def test_infinite_loop_is_stopped() -> None:
    start = time.monotonic()
    res = run_program("while True:\n    pass\n", FAST)
    assert res.status == "timeout"
    assert time.monotonic() - start < FAST.wall_s + 3


def test_huge_allocation_is_refused() -> None:
    res = run_program("x = bytearray(4 * 1024 ** 3)\nassert len(x) > 0\n", FAST)
    assert not res.passed
    assert "MemoryError" in res.stderr_tail


def test_fork_bomb_is_bounded_and_cleaned_up() -> None:
    prog = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    start = time.monotonic()
    res = run_program(prog, FAST)
    assert not res.passed
    assert time.monotonic() - start < FAST.wall_s + 5
    # The pool still works right after (no leftover processes exhausting the limits).
    assert run_program("assert True\n", FAST).passed


def test_writes_outside_the_temp_dir_do_not_land(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    repo_target = Path(sandbox.__file__).resolve().parent / "escaped.txt"
    prog = "\n".join(
        [
            f"for path in [{str(target)!r}, {str(repo_target)!r}]:",
            "    try:",
            "        open(path, 'w').write('x')",
            "    except OSError:",
            "        pass",
            "open('inside.txt', 'w').write('ok')",  # the own temp dir is writable
            "assert open('inside.txt').read() == 'ok'",
        ]
    )
    res = run_program(prog + "\n", FAST)
    assert res.passed, res.stderr_tail
    assert not target.exists()
    assert not repo_target.exists()


def test_agent_files_are_not_readable() -> None:
    own_source = Path(sandbox.__file__).resolve()
    res = run_program(f"print(open({str(own_source)!r}).read())\n", FAST)
    assert not res.passed
    assert res.isolation == "full"


def test_isolation_is_full_here_and_unavailable_isolation_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isolation_level() is Isolation.FULL
    monkeypatch.setattr(sandbox, "BWRAP", "/nonexistent/bwrap")
    assert isolation_level() is Isolation.UNSAFE
    with pytest.raises(SandboxUnavailableError, match="unsafe"):
        run_program("assert True\n", FAST)
    with pytest.raises(SandboxError):
        Evaluator(workers=1, limits=FAST).run_many([Program("def f():\n    return 1\n", "assert f() == 1\n")])


def test_unsafe_opt_in_keeps_the_verdict_rules_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "BWRAP", "/nonexistent/bwrap")
    ok = run_program(Program("def f():\n    return 1\n", "assert f() == 1\n"), FAST, unsafe=True)
    early = run_program(
        Program("raise SystemExit(0)\ndef f():\n    return 1\n", "assert f() == 1\n"), FAST, unsafe=True
    )
    loop = run_program("while True:\n    pass\n", FAST, unsafe=True)
    alloc = run_program("x = bytearray(4 * 1024 ** 3)\n", FAST, unsafe=True)
    assert ok.passed
    assert ok.isolation == "unsafe"
    assert not early.passed
    assert loop.status == "timeout"
    assert not alloc.passed


def test_evaluator_results_do_not_depend_on_worker_count() -> None:
    programs = [f"assert {i} % 3 != 0\n" for i in range(12)] + ["while True:\n    pass\n"]
    limits = Limits(cpu_s=1, wall_s=3.0)
    one = [r.passed for r in Evaluator(workers=1, limits=limits).run_many(programs)]
    three = [r.passed for r in Evaluator(workers=3, limits=limits).run_many(programs)]
    assert one == three == [i % 3 != 0 for i in range(12)] + [False]
    ev = Evaluator(workers=2, limits=limits)
    assert ev.pass_rate(programs[:3]) == pytest.approx(2 / 3)
    assert ev.pass_rate([]) == 0.0
    with pytest.raises(ValueError, match="workers"):
        Evaluator(workers=0)


def test_programs_that_do_not_compile_fail_without_a_process() -> None:
    ev = Evaluator(workers=1, limits=FAST)
    res = ev.run_many(["def f(:\n    pass\n", "assert True\n"])
    assert [r.status for r in res] == ["failed", "passed"]
    assert res[0].isolation == "precheck"
    assert "SyntaxError" in res[0].stderr_tail


def test_cli_refuses_without_isolation_unless_told_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from agent.cli import app

    monkeypatch.setattr(sandbox, "BWRAP", "/nonexistent/bwrap")
    runner = CliRunner()
    refused = runner.invoke(app, ["evaluate", "--split", "test_novel", "--json"])
    assert refused.exit_code == 1
    assert "--unsafe-sandbox" in json.loads(refused.stdout)["error"]
    unsafe = runner.invoke(app, ["evaluate", "--split", "test_novel", "--json", "--unsafe-sandbox"])
    assert unsafe.exit_code == 0, unsafe.output
    assert "warning" in unsafe.stderr
    data = json.loads(unsafe.stdout)
    assert data["isolation"] == "unsafe"
    assert data["pass_at_1"] == 1.0


def test_a_sandbox_that_cannot_be_built_is_an_error_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # A zygote whose per-program namespaces cannot be made (here: a full zygote without bwrap).
    monkeypatch.setattr(sandbox, "_bwrap_args", list)
    monkeypatch.setattr(sandbox, "_POOL", sandbox._Pool())
    with pytest.raises(SandboxError, match="setup failed"):
        run_program("assert True\n", FAST)
    sandbox._POOL.close()
