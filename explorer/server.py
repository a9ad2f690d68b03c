"""Wiring: settings + content store + verifier -> the FastAPI app (used by the CLI and the tests)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from explorer.app import create_app
from explorer.content import ContentReader, open_readonly_store
from explorer.data import ExplorerData, ExplorerSettings
from explorer.verdicts import Verifier, matchmaker_verifier


def build_app(
    *,
    manifest: Path,
    rpc_url: str | None = None,
    store: str | None = None,
    block_explorer_url: str | None = None,
    ttl_s: float = 3.0,
    verifier: Verifier = matchmaker_verifier,
    store_timeout_s: float = 3.0,
) -> FastAPI:
    settings = ExplorerSettings(
        manifest=manifest, rpc_url=rpc_url, block_explorer_url=block_explorer_url, ttl_s=ttl_s
    )
    content = ContentReader(open_readonly_store(store, timeout_s=store_timeout_s))
    return create_app(ExplorerData(settings, content, verifier))
