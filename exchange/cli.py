"""`knexa exchange ...`: content addressing from the command line.

A store is named by `--store`: a directory (a `LocalStore`, the default `.knexa/store`) or the URL of an
IPFS node's RPC API (`http://127.0.0.1:5001`, an `IpfsStore`). Every command prints a short human
answer, or one JSON object with `--json`; errors exit with status 1 (2 for a CID mismatch in `verify`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer
from eth_account import Account

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

DEFAULT_STORE = ".knexa/store"
JSON_OPTION = typer.Option(False, "--json", help="print one JSON object instead of text")
STORE_OPTION = typer.Option(
    DEFAULT_STORE,
    "--store",
    "-s",
    envvar="KNEXA_STORE",
    help="a directory (local store) or an IPFS RPC API URL such as http://127.0.0.1:5001",
)
CID_VERSION_OPTION = typer.Option(1, "--cid-version", min=0, max=1, help="0 (Qm..., Kubo's default) or 1")
TIMEOUT_OPTION = typer.Option(10.0, "--timeout", min=0.1, help="seconds to wait for an IPFS node")


def _emit(json_output: bool, payload: dict[str, Any], text: str) -> None:
    if json_output:
        typer.echo(json.dumps(payload, sort_keys=True))
    else:
        typer.echo(text)


def _fail(json_output: bool, error: Exception, code: int = 1) -> NoReturn:
    if json_output:
        typer.echo(json.dumps({"error": str(error), "type": type(error).__name__}, sort_keys=True))
    else:
        typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code)


def _run(json_output: bool, action: Callable[[], None]) -> None:
    try:
        action()
    except CidMismatchError as error:
        _fail(json_output, error, 2)
    except (ExchangeError, OSError) as error:
        _fail(json_output, error)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _version(value: int) -> CidVersion:
    return 0 if value == 0 else 1


@app.command()
def cid(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the file to address"),
    cid_version: int = CID_VERSION_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Print the CID `ipfs add` would give FILE (computed here, no node needed)."""

    def action() -> None:
        value = cid_of_file(file, _version(cid_version))
        _emit(json_output, {"cid": value, "size": file.stat().st_size, "file": str(file)}, value)

    _run(json_output, action)


@app.command()
def put(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the file to store"),
    store: str = STORE_OPTION,
    cid_version: int = CID_VERSION_OPTION,
    pin: bool = typer.Option(True, "--pin/--no-pin", help="pin the object so garbage collection keeps it"),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Store FILE (streamed) and print its CID."""

    def action() -> None:
        target = open_store(store, _version(cid_version), timeout)
        value = target.put_file(file, pin=pin)
        _emit(json_output, {"cid": value, "size": file.stat().st_size, "store": store, "pinned": pin}, value)

    _run(json_output, action)


@app.command()
def get(
    cid: str = typer.Argument(..., help="the CID to fetch"),
    store: str = STORE_OPTION,
    output: Path | None = typer.Option(None, "--output", "-o", help="write here (default: standard output)"),
    max_bytes: int = typer.Option(DEFAULT_MAX_BYTES, "--max-bytes", min=0, help="refuse larger objects"),
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = JSON_OPTION,
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
        _emit(
            json_output,
            {"cid": normalize_cid(cid), "size": size, "output": where},
            f"{size} bytes -> {where}",
        )

    _run(json_output, action)


@app.command()
def verify(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the bytes to check"),
    cid: str = typer.Argument(..., help="the CID they should have"),
    json_output: bool = JSON_OPTION,
) -> None:
    """Check that FILE is the content addressed by CID (exit status 2 if not)."""

    def action() -> None:
        value = verify_content(file.read_bytes(), cid)
        _emit(json_output, {"cid": value, "file": str(file), "ok": True}, f"ok: {file} is {value}")

    _run(json_output, action)


@app.command()
def has(
    cid: str = typer.Argument(..., help="the CID to look for"),
    store: str = STORE_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Say whether the store holds CID now (no network look-up); exit status 1 if not."""

    def action() -> None:
        held = open_store(store, timeout_s=timeout).has(cid)
        _emit(json_output, {"cid": normalize_cid(cid), "held": held}, "yes" if held else "no")
        if not held:
            raise typer.Exit(1)

    _run(json_output, action)


@app.command()
def pin(
    cid: str = typer.Argument(..., help="the CID to pin"),
    store: str = STORE_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Pin CID so that garbage collection keeps it."""

    def action() -> None:
        open_store(store, timeout_s=timeout).pin(cid)
        _emit(json_output, {"cid": normalize_cid(cid), "pinned": True}, f"pinned {normalize_cid(cid)}")

    _run(json_output, action)


@app.command()
def unpin(
    cid: str = typer.Argument(..., help="the CID to unpin"),
    store: str = STORE_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Remove the pin of CID."""

    def action() -> None:
        open_store(store, timeout_s=timeout).unpin(cid)
        _emit(json_output, {"cid": normalize_cid(cid), "pinned": False}, f"unpinned {normalize_cid(cid)}")

    _run(json_output, action)


@app.command()
def pins(
    store: str = STORE_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """List the pinned CIDs."""

    def action() -> None:
        listed = sorted(open_store(store, timeout_s=timeout).pins())
        _emit(json_output, {"pins": listed}, "\n".join(listed))

    _run(json_output, action)


@app.command()
def inspect(
    cid: str = typer.Argument(..., help="the CID of a sealed bundle or a JSON document"),
    store: str = STORE_OPTION,
    timeout: float = TIMEOUT_OPTION,
    json_output: bool = JSON_OPTION,
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
        _emit(json_output, info, json.dumps(info, indent=2, sort_keys=True))

    _run(json_output, action)


@app.command()
def pubkey(
    key_env: str = typer.Option(
        "KNEXA_PRIVATE_KEY", "--key-env", help="environment variable holding the hex private key"
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Print the 33-byte compressed public key (hex) to register for receiving sealed bundles."""

    def action() -> None:
        secret = os.environ.get(key_env)
        if not secret:
            raise ExchangeError(f"set {key_env} to the hex private key (it is never read from arguments)")
        public = public_key_of(secret).hex()
        address = str(Account.from_key(bytes.fromhex(secret.removeprefix("0x"))).address)
        _emit(json_output, {"public_key": public, "address": address}, public)

    _run(json_output, action)


@app.command()
def node(
    repo: Path | None = typer.Option(
        None, "--repo", help="keep the node's repo here (default: a temporary one)"
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Run an offline IPFS node on a free loopback port until interrupted (Kubo if on PATH, else js-ipfs)."""

    def action() -> None:
        with IpfsNode(repo_dir=repo) as running:
            _emit(
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
