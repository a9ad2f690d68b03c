"""The `knexa` command: one Typer app; each package contributes its own sub-commands."""

from __future__ import annotations

import typer

from chain.cli import app as chain_app
from knexa import __version__
from knexa.demo import run_demo

app = typer.Typer(
    name="knexa",
    help="knexa: a blockchain-audited marketplace where organizations improve small code LLMs together.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(chain_app, name="chain")


@app.command()
def version() -> None:
    """Print the knexa version."""
    typer.echo(__version__)


@app.command()
def demo(
    json_output: bool = typer.Option(False, "--json", help="print the result as JSON instead of tables"),
) -> None:
    """Run the end-to-end demo on the embedded default (a local Anvil chain, started and stopped here)."""
    run_demo(json_output=json_output)
