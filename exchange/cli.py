"""`knexa exchange ...`: content addressing from the command line.

A store is named by `--store`: a directory (a `LocalStore`, the default `.knexa/store`) or the URL of an
IPFS node's RPC API (`http://127.0.0.1:5001`, an `IpfsStore`). Every command prints a short human
answer, or one JSON object with `--json`; errors exit with status 1 (4 for a CID mismatch in `verify`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from eth_account import Account

from clikit import ExitCode, emit, fail, json_option, store_option
from exchange.canonical import loads_canonical
from exchange.cid import CidVersion, cid_of_file, normalize_cid, verify_content
from exchange.ecies import public_key_of
from exchange.errors import CidMismatchError, ExchangeError
from exchange.ipfs import IpfsStore
from exchange.node import IpfsNode
from exchange.sealing import MAGIC, read_header
from exchange.store import DEFAULT_MAX_BYTES
from exchange.stores import open_store

app = typer.Typer(
    name="exchange",
    help="Content-addressed exchange: exact IPFS CIDs, the local store and IPFS nodes, sealed bundles.",
    no_args_is_help=True,
    add_completion=False,
)

CID_VERSION_OPTION = typer.Option(1, "--cid-version", min=0, max=1, help="0 (Qm..., Kubo's default) or 1")
TIMEOUT_OPTION = typer.Option(10.0, "--timeout", min=0.1, help="seconds to wait for an IPFS node")


def _run(json_output: bool, action: Callable[[], None]) -> None:
    try:
        action()
    except CidMismatchError as error:
        fail(error, json_output=json_output, code=ExitCode.MISMATCH)
    except (ExchangeError, OSError) as error:
        fail(error, json_output=json_output)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _version(value: int) -> CidVersion:
    return 0 if value == 0 else 1


@app.command()
def cid(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the file to address"),
    cid_version: int = CID_VERSION_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Print the CID `ipfs add` would give FILE (computed here, no node needed)."""

    def action() -> None:
        value = cid_of_file(file, _version(cid_version))
        emit(json_output, {"cid": value, "size": file.stat().st_size, "file": str(file)}, value)

    _run(json_output, action)


@app.command()
def put(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the file to store"),
    store: str = store_option(),
    cid_version: int = CID_VERSION_OPTION,
    pin: bool = typer.Option(True, "--pin/--no-pin", help="pin the object so garbage collection keeps it"),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Store FILE (streamed) and print its CID."""

    def action() -> None:
        target = open_store(store, _version(cid_version), timeout)
        value = target.put_file(file, pin=pin)
        emit(json_output, {"cid": value, "size": file.stat().st_size, "store": store, "pinned": pin}, value)

    _run(json_output, action)


@app.command()
def get(
    cid: str = typer.Argument(..., help="the CID to fetch"),
    store: str = store_option(),
    output: Path | None = typer.Option(None, "--output", "-o", help="write here (default: standard output)"),
    max_bytes: int = typer.Option(DEFAULT_MAX_BYTES, "--max-bytes", min=0, help="refuse larger objects"),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Fetch CID, verify the bytes against it, and write them out (nothing is written on a mismatch)."""

    def action() -> None:
        source = open_store(store, timeout_s=timeout)
        if isinstance(source, IpfsStore) and output is not None:
            source.get_file(cid, output, max_bytes=max_bytes)
            size = output.stat().st_size
        else:
            data = source.get(cid, max_bytes=max_bytes)
            size = len(data)
            if output is not None:
                output.write_bytes(data)
            elif not json_output:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
                return
        where = str(output) if output is not None else None
        emit(
            json_output,
            {"cid": normalize_cid(cid), "size": size, "output": where},
            f"{size} bytes -> {where}",
        )

    _run(json_output, action)


@app.command()
def verify(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the bytes to check"),
    cid: str = typer.Argument(..., help="the CID they should have"),
    json_output: bool = json_option(),
) -> None:
    """Check that FILE is the content addressed by CID (exit status 2 if not)."""

    def action() -> None:
        value = verify_content(file.read_bytes(), cid)
        emit(json_output, {"cid": value, "file": str(file), "ok": True}, f"ok: {file} is {value}")

    _run(json_output, action)


@app.command()
def has(
    cid: str = typer.Argument(..., help="the CID to look for"),
    store: str = store_option(),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Say whether the store holds CID now (no network look-up); exit status 1 if not."""

    def action() -> None:
        held = open_store(store, timeout_s=timeout).has(cid)
        emit(json_output, {"cid": normalize_cid(cid), "held": held}, "yes" if held else "no")
        if not held:
            raise typer.Exit(ExitCode.FAILURE)

    _run(json_output, action)


@app.command()
def pin(
    cid: str = typer.Argument(..., help="the CID to pin"),
    store: str = store_option(),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Pin CID so that garbage collection keeps it."""

    def action() -> None:
        open_store(store, timeout_s=timeout).pin(cid)
        emit(json_output, {"cid": normalize_cid(cid), "pinned": True}, f"pinned {normalize_cid(cid)}")

    _run(json_output, action)


@app.command()
def unpin(
    cid: str = typer.Argument(..., help="the CID to unpin"),
    store: str = store_option(),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Remove the pin of CID."""

    def action() -> None:
        open_store(store, timeout_s=timeout).unpin(cid)
        emit(json_output, {"cid": normalize_cid(cid), "pinned": False}, f"unpinned {normalize_cid(cid)}")

    _run(json_output, action)


@app.command()
def pins(
    store: str = store_option(),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = json_option(),
) -> None:
    """List the pinned CIDs."""

    def action() -> None:
        listed = sorted(open_store(store, timeout_s=timeout).pins())
        emit(json_output, {"pins": listed}, "\n".join(listed))

    _run(json_output, action)


@app.command()
def inspect(
    cid: str = typer.Argument(..., help="the CID of a sealed bundle or a JSON document"),
    store: str = store_option(),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = json_option(),
) -> None:
    """Show the public part of an object: a sealed bundle's header, or a document's format and fields."""

    def action() -> None:
        data = open_store(store, timeout_s=timeout).get(cid)
        info: dict[str, Any]
        if data[:4] == MAGIC:
            header, ciphertext = read_header(data)
            info = {"object": "sealed-bundle", **header.to_json(), "ciphertext_bytes": len(ciphertext)}
        else:
            document = loads_canonical(data)
            info = {"object": "document", "document": document}
        info["cid"] = normalize_cid(cid)
        info["size"] = len(data)
        emit(json_output, info, json.dumps(info, indent=2, sort_keys=True))

    _run(json_output, action)


@app.command()
def pubkey(
    key_env: str = typer.Option(
        "KNEXA_PRIVATE_KEY", "--key-env", help="environment variable holding the hex private key"
    ),
    json_output: bool = json_option(),
) -> None:
    """Print the 33-byte compressed public key (hex) to register for receiving sealed bundles."""

    def action() -> None:
        secret = os.environ.get(key_env)
        if not secret:
            raise ExchangeError(f"set {key_env} to the hex private key (it is never read from arguments)")
        public = public_key_of(secret).hex()
        address = str(Account.from_key(bytes.fromhex(secret.removeprefix("0x"))).address)
        emit(json_output, {"public_key": public, "address": address}, public)

    _run(json_output, action)


@app.command()
def node(
    repo: Path | None = typer.Option(
        None, "--repo", help="keep the node's repo here (default: a temporary one)"
    ),
    json_output: bool = json_option(),
) -> None:
    """Run an offline IPFS node on a free loopback port until interrupted (Kubo if on PATH, else js-ipfs)."""

    def action() -> None:
        with IpfsNode(repo_dir=repo) as running:
            emit(
                json_output,
                {"api_url": running.api_url, "kind": running.kind, "pid": running.pid},
                f"{running.kind} node: {running.api_url} (Ctrl-C stops it)",
            )
            signal.signal(signal.SIGTERM, _interrupt)
            try:
                while running.running:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass

    _run(json_output, action)
