"""`knexa exchange ...` commands, run through Typer's test runner on real files and stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eth_account import Account
from typer.testing import CliRunner

from clikit import ExitCode
from exchange.cid import cid_of
from exchange.cli import app
from exchange.ecies import public_key_of
from exchange.local import LocalStore
from exchange.node import IpfsNode
from market.sealing import seal_bundle
from tests.exchange.samples import STUDENT_KEY, TEACHER, TEACHER_KEY, knowledge

runner = CliRunner()
DATA = np.random.default_rng(9).bytes(600_000)


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, [*args, "--json"], env=env)
    return result.exit_code, json.loads(result.stdout)


def test_every_command_has_help() -> None:
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0
    for command in (
        "cid",
        "put",
        "get",
        "verify",
        "has",
        "pin",
        "unpin",
        "pins",
        "inspect",
        "pubkey",
        "node",
    ):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert "--json" in result.stdout


def test_cid_put_get_verify_on_a_local_store(tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(DATA)
    store = str(tmp_path / "store")

    assert invoke("cid", str(source)) == (0, {"cid": cid_of(DATA), "size": len(DATA), "file": str(source)})
    assert invoke("cid", str(source), "--cid-version", "0")[1]["cid"] == cid_of(DATA, 0)

    code, answer = invoke("put", str(source), "--store", store)
    assert code == 0
    assert answer["cid"] == cid_of(DATA)
    assert invoke("has", cid_of(DATA), "--store", store) == (0, {"cid": cid_of(DATA), "held": True})
    assert invoke("pins", "--store", store)[1] == {"pins": [cid_of(DATA)]}

    out = tmp_path / "out.bin"
    assert invoke("get", cid_of(DATA), "--store", store, "-o", str(out))[0] == 0
    assert out.read_bytes() == DATA

    assert invoke("verify", str(out), cid_of(DATA))[1]["ok"] is True
    out.write_bytes(DATA[:-1])
    code, answer = invoke("verify", str(out), cid_of(DATA))
    assert code == ExitCode.MISMATCH
    assert answer["type"] == "CidMismatchError"

    assert invoke("unpin", cid_of(DATA), "--store", store)[1] == {"cid": cid_of(DATA), "pinned": False}
    code, answer = invoke("unpin", cid_of(DATA), "--store", store)
    assert code == 1
    assert "not pinned" in str(answer["error"])


def test_get_writes_nothing_when_the_store_is_damaged(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    cid = store.put(DATA)
    damaged = store.root / "objects" / cid[-2:] / cid
    damaged.chmod(0o644)
    damaged.write_bytes(DATA[::-1])
    out = tmp_path / "out.bin"
    code, answer = invoke("get", cid, "--store", str(store.root), "-o", str(out))
    assert code == ExitCode.MISMATCH
    assert answer["type"] == "CidMismatchError"
    assert not out.exists()


def test_inspect_shows_only_the_public_header_and_pubkey_reads_the_key_from_env(tmp_path: Path) -> None:
    student = Account.from_key(STUDENT_KEY)
    bundle = knowledge(teacher=TEACHER, student=student.address)
    envelope = seal_bundle(bundle, teacher_key=TEACHER_KEY, recipient_public_key=public_key_of(STUDENT_KEY))
    store = LocalStore(tmp_path / "store")
    cid = store.put(envelope)
    code, answer = invoke("inspect", cid, "--store", str(store.root))
    assert code == 0
    assert answer["object"] == "sealed-bundle"
    assert answer["kind"] == "knowledge"
    assert "completions" not in json.dumps(answer)
    assert (answer["teacher"], answer["student"], answer["round"]) == (TEACHER, student.address, 4)
    code, answer = invoke("pubkey", env={"KNEXA_PRIVATE_KEY": STUDENT_KEY.hex()})
    assert answer == {"public_key": public_key_of(STUDENT_KEY).hex(), "address": student.address}
    assert invoke("pubkey", env={"KNEXA_PRIVATE_KEY": ""})[0] == 1


def test_unknown_cid_and_bad_cid_are_errors(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    code, answer = invoke("get", cid_of(b"absent"), "--store", store)
    assert (code, answer["type"]) == (1, "NotFoundError")
    code, answer = invoke("get", "not-a-cid", "--store", store)
    assert (code, answer["type"]) == (1, "InvalidCidError")


@pytest.mark.ipfs
def test_the_same_commands_against_the_ipfs_node(ipfs_node: IpfsNode, tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(DATA)
    code, answer = invoke("put", str(source), "--store", ipfs_node.api_url, "--no-pin")
    assert (code, answer["cid"]) == (0, cid_of(DATA))
    out = tmp_path / "copy.bin"
    assert invoke("get", cid_of(DATA), "--store", ipfs_node.api_url, "-o", str(out))[0] == 0
    assert out.read_bytes() == DATA
    assert invoke("pin", cid_of(DATA), "--store", ipfs_node.api_url)[0] == 0
    assert cid_of(DATA) in invoke("pins", "--store", ipfs_node.api_url)[1]["pins"]  # type: ignore[operator]
    assert invoke("unpin", cid_of(DATA), "--store", ipfs_node.api_url)[0] == 0
