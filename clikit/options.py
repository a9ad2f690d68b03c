"""Option factories: one name, one default, one environment variable and one help text per option.

Each factory returns a fresh `typer.Option` so that a command declares, e.g.,
`rpc: str | None = rpc_option()` and every command group spells it the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from clikit import output
from clikit.defaults import DEFAULT_MANIFEST, DEFAULT_STORE, MANIFEST_ENV, RPC_ENV, STORE_ENV


def rpc_option(help_text: str = "JSON-RPC URL of the chain (default: the manifest's)") -> Any:
    """`--rpc URL` (env KNEXA_RPC). None means: the deployment manifest's URL."""
    return typer.Option(None, "--rpc", envvar=RPC_ENV, help=help_text)


def manifest_option() -> Any:
    """`--manifest PATH` (env KNEXA_MANIFEST): the market's deployment manifest."""
    return typer.Option(Path(DEFAULT_MANIFEST), "--manifest", envvar=MANIFEST_ENV, help="deployment manifest")


def store_option() -> Any:
    """`--store DIR|URL` (env KNEXA_STORE): a local store directory or an IPFS RPC API URL."""
    return typer.Option(
        DEFAULT_STORE, "--store", envvar=STORE_ENV, help="a store directory or an IPFS RPC API URL"
    )


def json_option() -> Any:
    """`--json`: one JSON document on stdout (errors as `{"error": ...}`) instead of tables.

    Parsing it also sets the command's output mode, so that `fail()` anywhere in the command
    (a helper that never saw the flag) answers in JSON too.
    """
    return typer.Option(False, "--json", help="print JSON for scripts (errors too)", callback=_remember_mode)


def _remember_mode(value: bool) -> bool:
    output.set_json_mode(bool(value))
    return value
