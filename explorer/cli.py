"""`knexa explorer ...`: serve the audit explorer over a chain and a content store."""

from __future__ import annotations

from pathlib import Path

import typer

from clikit import manifest_option, rpc_option, store_option

app = typer.Typer(
    help="The audit explorer: a web page and JSON API over chain + content store.", no_args_is_help=True
)


@app.callback()
def explorer() -> None:
    """The audit explorer: a web page and JSON API over chain + content store."""
    # A callback keeps `serve` a sub-command when this app runs on its own (not only under `knexa`).


@app.command()
def serve(
    rpc: str | None = rpc_option(),
    manifest: Path = manifest_option(),
    store: str = store_option(),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="interface to listen on (0.0.0.0 only inside a container)"
    ),
    port: int = typer.Option(8000, "--port", help="TCP port to listen on"),
    block_explorer_url: str | None = typer.Option(
        None,
        "--block-explorer-url",
        help="base URL of an Otterscan-style block explorer (e.g. http://127.0.0.1:5100): adds links to it",
    ),
    cache_seconds: float = typer.Option(
        3.0, "--cache-seconds", help="how long one read of the chain is reused between requests"
    ),
) -> None:
    """Serve the explorer until Ctrl-C (pages at /, JSON under /api, OpenAPI at /openapi.json)."""
    import uvicorn

    from explorer.server import build_app

    application = build_app(
        manifest=manifest,
        rpc_url=rpc,
        store=store,
        block_explorer_url=block_explorer_url,
        ttl_s=cache_seconds,
    )
    typer.echo(f"knexa explorer on http://{host}:{port} (manifest {manifest})")
    uvicorn.run(application, host=host, port=port, log_level="warning")
