"""An organization's own data (the JSONL schema) and model directory: every bad line class is named
by line and field, a model directory that cannot load says why, and `init` writes nothing on error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knexa.cli import app
from org.data import DataFileError, parse_problems, parse_transfer, write_problems
from org.model import ModelLoadError, check_source, load_base, zoo_checkpoint

PASSWORD = "correct horse battery staple"
GOOD = {
    "id": "add-1",
    "prompt": 'def add(a, b):\n    """Add two numbers."""\n',
    "entry_point": "add",
    "public_tests": ["assert add(1, 2) == 3"],
    "hidden_tests": ["assert add(-1, 1) == 0", "assert add(0, 0) == 0"],
    "category": "arithmetic",
    "solution": "    return a + b\n",
}


def _line(**changes: object) -> str:
    row = {**GOOD, **changes}
    return json.dumps({key: value for key, value in row.items() if value is not ...})


BAD_LINES = [
    ("{not json", "$", "not JSON"),
    ("[1, 2]", "$", "expected a JSON object"),
    (_line(prompt=...), "prompt", "missing"),
    (_line(entry_point=...), "entry_point", "missing"),
    (_line(public_tests=...), "public_tests", "missing"),
    (_line(hidden_tests=...), "hidden_tests", "missing"),
    (_line(tests=["assert True"]), "tests", "unknown field"),
    (_line(prompt=7), "prompt", "expected a string"),
    (_line(public_tests="assert add(1, 2) == 3"), "public_tests", "list of strings"),
    (_line(hidden_tests=[1]), "hidden_tests", "list of strings"),
    (_line(hidden_tests=[]), "hidden_tests", "at least one hidden test"),
    (_line(hidden_tests=["assert add(1, 2 == 3"]), "hidden_tests[0]", "not valid Python"),
    (_line(entry_point="not an identifier"), "entry_point", "not a Python identifier"),
    (_line(entry_point="sub"), "prompt", "does not define the entry point"),
    (_line(category="astrology"), "category", "is not one of"),
    (_line(solution="    return a +\n"), "solution", "not valid Python"),
]


@pytest.mark.parametrize(("raw", "field", "message"), BAD_LINES, ids=[f"{b[1]}:{b[2]}" for b in BAD_LINES])
def test_each_bad_line_class_is_named_by_line_and_field(
    tmp_path: Path, raw: str, field: str, message: str
) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(_line(id="ok-1") + "\n\n" + raw + "\n" + _line(id="ok-2") + "\n")
    with pytest.raises(DataFileError) as caught:
        parse_problems(path)
    assert [(e.line, e.field) for e in caught.value.errors] == [(3, field)]
    assert message in caught.value.errors[0].message
    assert f"line 3: {field}: " in str(caught.value)


def test_duplicate_ids_empty_files_and_unreadable_files_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(_line() + "\n" + _line() + "\n")
    with pytest.raises(DataFileError, match="line 2: id: 'add-1' repeats line 1"):
        parse_problems(path)
    path.write_text("\n\n")
    with pytest.raises(DataFileError, match="no problems"):
        parse_problems(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataFileError, match="cannot read"):
        parse_problems(path)
    with pytest.raises(DataFileError, match="cannot read"):
        parse_problems(tmp_path / "absent.jsonl")


def test_every_bad_line_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(["{", _line(id="a", prompt=...), _line(id="b"), _line(id="c", category="x")]))
    with pytest.raises(DataFileError) as caught:
        parse_problems(path)
    assert [(e.line, e.field) for e in caught.value.errors] == [(1, "$"), (2, "prompt"), (4, "category")]


def test_good_lines_round_trip_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "acme.jsonl"
    minimal = {k: GOOD[k] for k in ("prompt", "entry_point", "public_tests", "hidden_tests")}
    path.write_text(_line() + "\n" + json.dumps(minimal) + "\n")
    first, second = parse_problems(path)
    assert first.pid == "add-1"
    assert first.category == "arithmetic"
    assert first.solution == GOOD["solution"]
    assert second.pid == "acme-2"
    assert second.category == "uncategorized"
    assert second.solution == ""
    assert first.program(first.solution).tests.endswith("assert add(0, 0) == 0\n")
    copy = tmp_path / "copy.jsonl"
    write_problems(copy, (first, second))
    assert parse_problems(copy) == (first, second.__class__(**{**second.__dict__, "pid": "acme-2"}))
    transfer_file = tmp_path / "transfer.jsonl"
    transfer_file.write_text(
        json.dumps({k: GOOD[k] for k in ("id", "prompt", "entry_point", "public_tests")})
    )
    (item,) = parse_transfer(transfer_file)
    assert item.pid == "add-1"
    assert item.public_tests == tuple(GOOD["public_tests"])


# ---------------------------------------------------------------------------------- model directories


@pytest.fixture(scope="module")
def checkpoint(zoo_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zoo_checkpoint("smoke:llama", tmp_path_factory.mktemp("model") / "acme-llama")


def _broken(checkpoint: Path, tmp_path: Path, how: str) -> Path:
    target = tmp_path / how
    shutil.copytree(checkpoint, target)
    if how == "no-config":
        (target / "config.json").unlink()
    elif how == "pickled-weights":
        (target / "model.safetensors").rename(target / "pytorch_model.bin")
    elif how == "corrupt-weights":
        (target / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{nonsense")
    elif how == "unsupported-type":
        config = json.loads((target / "config.json").read_text())
        (target / "config.json").write_text(json.dumps(config | {"model_type": "bert"}))
    elif how == "remote-code":
        config = json.loads((target / "config.json").read_text())
        auto_map = {"AutoModelForCausalLM": "evil.EvilModel", "AutoConfig": "evil.EvilConfig"}
        (target / "config.json").write_text(json.dumps(config | {"model_type": "evil", "auto_map": auto_map}))
        (target / "evil.py").write_text("raise SystemExit('remote code ran')\n")
    elif how == "no-tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (target / name).unlink()
    return target


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no-config", "no config.json"),
        ("pickled-weights", "no .safetensors weights"),
        ("corrupt-weights", "not a safetensors file"),
        ("unsupported-type", "model type 'bert' is not supported"),
        ("remote-code", "config.json"),
        ("no-tokenizer", "tokenizer"),
    ],
)
def test_a_model_directory_that_cannot_load_says_why(
    checkpoint: Path, tmp_path: Path, how: str, message: str
) -> None:
    broken = _broken(checkpoint, tmp_path, how)
    with pytest.raises(ModelLoadError, match=message):
        check_source(str(broken))
    with pytest.raises(ModelLoadError, match=message):
        load_base(str(broken))


def test_not_a_directory_and_unknown_zoo_names(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a directory"):
        check_source(str(tmp_path / "absent"))
    with pytest.raises(ModelLoadError, match="unknown zoo model"):
        check_source("tiny:bert")
    assert check_source("smoke:llama") == "smoke:llama"


def test_a_checkpoint_loads_offline_with_a_stable_identity(checkpoint: Path) -> None:
    first, second = load_base(str(checkpoint), lora_rank=4), load_base(str(checkpoint))
    assert first.identity == second.identity
    assert len(first.identity) == 64
    assert first.spec.family == "llama"
    assert first.spec.lora_rank == 4
    zoo = load_base("smoke:llama")
    assert zoo.codec.vocab_size == first.codec.vocab_size  # the same zoo tokenizer, saved and reloaded


# ---------------------------------------------------------------------------------- init writes nothing


def _init(home: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["org", "init", "acme", "--home", str(home), *options], env={"KNEXA_PASSWORD": PASSWORD}
    )
    return result.exit_code, result.stdout


def test_init_with_bad_data_or_model_changes_nothing_and_says_so_in_one_line(
    checkpoint: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(_line() + "\n" + _line(id="x", entry_point="sub") + "\n")
    home = tmp_path / "home"
    code, out = _init(home, "--model", str(checkpoint), "--data", str(data), "--json")
    assert code == 1
    (line,) = out.splitlines()
    assert "line 2: prompt: does not define the entry point" in json.loads(line)["error"]
    assert not home.exists()
    data.write_text(_line() + "\n")
    code, out = _init(home, "--model", str(tmp_path / "nowhere"), "--data", str(data), "--json")
    assert code == 1
    assert "not a directory" in json.loads(out)["error"]
    assert not home.exists()
    code, out = _init(home, "--model", str(checkpoint), "--json")
    assert code == 2
    assert "both --model and --data" in json.loads(out)["error"]
    assert not home.exists()


def test_init_copies_the_data_and_records_the_model(checkpoint: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(_line() + "\n" + _line(id="add-2") + "\n")
    home = tmp_path / "home"
    code, out = _init(home, "--model", str(checkpoint), "--data", str(data), "--lora-rank", "4", "--json")
    assert code == 0, out
    learner = json.loads(out)["learner"]
    assert learner["kind"] == "lora"
    assert learner["model"] == str(checkpoint.resolve())
    assert learner["lora_rank"] == 4
    assert (home / "data.jsonl").read_text() == data.read_text()


def test_the_profile_carries_the_base_model_and_old_profiles_keep_their_bytes() -> None:
    from market.documents import BaseModelRef, PeftSummary, ProfileDoc

    fields = {
        "model_family": "llama",
        "size_bucket": "1",
        "peft": PeftSummary(rank=4, target_modules=("q_proj",)),
        "pass_at_1": 0.5,
        "pass_at_1_delta": 0.0,
        "categories": ("arithmetic",),
        "histogram": (1.0,),
        "epsilon": 1.0,
        "budget_spent": 1.0,
    }
    plain = ProfileDoc(**fields)  # type: ignore[arg-type]
    assert b"base_model" not in plain.to_bytes()
    assert ProfileDoc.from_bytes(plain.to_bytes()) == plain
    ref = BaseModelRef("acme-llama", "ab" * 32, "bpe-0123456789abcdef")
    declared = ProfileDoc(**fields, base_model=ref)  # type: ignore[arg-type]
    assert ProfileDoc.from_bytes(declared.to_bytes()).base_model == ref
    tampered = declared.to_json() | {"base_model": {"name": "x", "weights": "y"}}
    from exchange.errors import SchemaError

    with pytest.raises(SchemaError, match="missing"):
        ProfileDoc.from_json(tampered)


def test_doctor_loads_the_model_and_parses_the_data(checkpoint: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(_line() + "\n" + _line(id="add-2") + "\n")
    home = tmp_path / "home"
    assert _init(home, "--model", str(checkpoint), "--data", str(data), "--rpc", "http://127.0.0.1:9")[0] == 0
    result = CliRunner().invoke(app, ["org", "doctor", "--home", str(home), "--json"])
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert checks["data"]["ok"] is True
    assert "1 training and 1 validation problems" in checks["data"]["detail"]
    assert checks["model"]["ok"] is True
    assert "identity" in checks["model"]["detail"]
    assert checks["chain"]["ok"] is False  # no chain in this test: the doctor says so and how to fix it
    assert checks["chain"]["fix"]
    (home / "data.jsonl").write_text("{oops\n")
    result = CliRunner().invoke(app, ["org", "doctor", "--home", str(home), "--json"])
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert result.exit_code == 1
    assert checks["data"]["ok"] is False
    assert "line 1: $: not JSON" in checks["data"]["detail"]
