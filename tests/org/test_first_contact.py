"""A new user's first commands: any accepted name works, every error is one line (JSON under --json),
and `knexa org doctor` says what is wrong and how to fix it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chain.devchain import DevChain
from exchange.local import LocalStore
from knexa.cli import app
from market.documents import ProfileDoc
from org.identity import default_home
from tests.org.conftest import PASSWORD


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"KNEXA_PASSWORD": PASSWORD, **(env or {})})
    return result.exit_code, result.stdout


@pytest.mark.parametrize("name", ["acme", "org-0", "org-7", "Acme Corp", "a/../b", "ünï"])
def test_the_readme_example_works_for_every_name(
    dev_chain: DevChain, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KNEXA_HOME", str(tmp_path / "state"))
    manifest = tmp_path / "deployment.json"
    dev_chain.deployment.save(manifest)
    store = LocalStore(tmp_path / "store")
    env = {"KNEXA_HOME": str(tmp_path / "state")}
    common = ("--rpc", dev_chain.node.rpc_url, "--manifest", str(manifest), "--store", str(store.root))
    code, out = _invoke("org", "init", name, *common, "--dev-account", "2", "--json", env=env)
    assert code == 0, out
    home = Path(json.loads(out)["home"])
    assert home == default_home(name)
    assert home.parent == tmp_path / "state" / "orgs"
    code, out = _invoke("org", "register", "--org", name, "--json", env=env)
    assert code == 0, out
    profile = ProfileDoc.from_bytes(store.get(json.loads(out)["profile_cid"]))
    assert profile.base_model is None  # a simulated organization has no base model to declare


def test_errors_are_one_line_and_json_under_json(dev_chain: DevChain, tmp_path: Path) -> None:
    env = {"KNEXA_HOME": str(tmp_path / "state")}
    code, out = _invoke("org", "register", "--org", "nobody", "--json", env=env)
    assert code == 1
    (line,) = out.splitlines()
    assert "error" in json.loads(line)
    code, out = _invoke("org", "init", "lonely", "--learner", "lora", "--json", env=env)
    assert code == 2
    assert "--model and --data" in json.loads(out)["error"]
    code, out = _invoke("org", "init", "", "--json", env=env)
    assert code == 1
    assert "1 to 64 bytes" in json.loads(out)["error"]
    code, out = _invoke("org", "init", "ok", "--learner", "nope", "--json", env=env)
    assert code == 2
    assert "unknown learner kind 'nope'" in json.loads(out)["error"]
    assert not (tmp_path / "state").exists()


def test_doctor_names_each_problem_and_its_fix(dev_chain: DevChain, tmp_path: Path) -> None:
    manifest = tmp_path / "deployment.json"
    dev_chain.deployment.save(manifest)
    store = LocalStore(tmp_path / "store")
    home = tmp_path / "acme"
    common = ("--rpc", dev_chain.node.rpc_url, "--manifest", str(manifest), "--store", str(store.root))
    assert _invoke("org", "init", "acme", "--home", str(home), *common, "--dev-account", "3")[0] == 0

    def doctor(env: dict[str, str] | None = None) -> tuple[int, dict[str, dict[str, object]]]:
        code, out = _invoke("org", "doctor", "--home", str(home), "--json", env=env)
        return code, {check["name"]: check for check in json.loads(out)["checks"]}

    code, checks = doctor()
    assert code == 1
    assert checks["registration"]["ok"] is False
    assert "knexa org register" in str(checks["registration"]["fix"])
    for name in ("config", "keystore", "chain", "store", "sandbox"):
        assert checks[name]["ok"] is True, checks[name]
    assert "isolation" in str(checks["sandbox"]["detail"])
    assert "programs/s" in str(checks["sandbox"]["detail"])
    assert checks["data"]["skipped"]
    assert checks["model"]["skipped"]
    code, checks = doctor({"KNEXA_PASSWORD": "wrong"})
    assert checks["keystore"]["ok"] is False
    assert _invoke("org", "register", "--home", str(home))[0] == 0
    code, checks = doctor()
    assert code == 0
    assert checks["registration"]["ok"] is True
    dev_chain.deployment.save(manifest)
    config = json.loads((home / "config.json").read_text())
    (home / "config.json").write_text(json.dumps(config | {"rpc_url": "http://127.0.0.1:9"}))
    code, checks = doctor()
    assert code == 1
    assert checks["chain"]["ok"] is False
    assert "knexa chain up" in str(checks["chain"]["fix"])
    assert checks["registration"]["skipped"]
    code, out = _invoke("org", "doctor", "--home", str(tmp_path / "nothing-here"), "--json")
    assert code == 1
    assert json.loads(out)["checks"][0]["fix"].startswith("run `knexa org init")
