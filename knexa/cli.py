"""The `knexa` command: one Typer app; each package contributes its own sub-commands."""

from __future__ import annotations

from pathlib import Path

import typer

from agent.cli import app as agent_app
from chain.cli import app as chain_app
from clikit import EXIT_CODES_HELP
from exchange.cli import app as exchange_app
from explorer.cli import app as explorer_app
from knexa import __version__
from knexa.demo import run_demo, run_process_demo_cli
from matchmaker.cli import app as matchmaker_app
from matchmaker.commands import audit_app
from matchmaker.commands import register as register_matchmaker_commands
from org.cli import app as org_app
from sim import learner as synthetic_learner
from sim.cli import app as sim_app
from sim.cli import simulate

app = typer.Typer(
    name="knexa",
    help="knexa: a blockchain-audited marketplace where organizations improve small code LLMs together.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(chain_app, name="chain")
app.add_typer(exchange_app, name="exchange")
register_matchmaker_commands(matchmaker_app)
app.add_typer(matchmaker_app, name="matchmaker")
app.add_typer(audit_app, name="audit")
app.add_typer(explorer_app, name="explorer")
app.add_typer(org_app, name="org")
app.add_typer(agent_app, name="agent")
app.add_typer(sim_app, name="sim")
# `knexa matchmaker simulate` stays as the name users know; it is the same command as `knexa sim simulate`.
matchmaker_app.command("simulate")(simulate)
# Organizations can run simulated skills (`knexa org init --learner synthetic`).
synthetic_learner.register()


@app.command()
def version() -> None:
    """Print the knexa version."""
    typer.echo(__version__)


@app.command()
def demo(
    organizations: int = typer.Option(
        None, min=2, max=8, help="how many organizations trade [default: 6; 3 with --processes]"
    ),
    rounds: int = typer.Option(
        None, min=1, max=100, help="how many marketplace rounds [default: 6; 2 with --processes]"
    ),
    seed: int = typer.Option(0, help="seed of the federation and the matchmaker"),
    processes: bool = typer.Option(
        False,
        "--processes",
        help="run Anvil, the matchmaker and every organization as separate `knexa` processes",
    ),
    learner: str = typer.Option(
        "lora", help="with --processes: lora (real tiny LoRA models) or synthetic (simulated skills)"
    ),
    workdir: Path | None = typer.Option(None, help="with --processes: keep keystores, store and logs here"),
    scale: str = typer.Option(
        "tiny", help="with --learner lora: tiny (seconds per round) or small (minutes)"
    ),
    round_blocks: int = typer.Option(
        None, help="with --processes: blocks (seconds) per round [default: 60 with lora, 12 synthetic]"
    ),
    json_output: bool = typer.Option(False, "--json", help="print the result as JSON instead of tables"),
) -> None:
    """Run the end-to-end demo on the embedded default (a local Anvil chain and content store,
    started and removed here)."""
    if processes:
        run_process_demo_cli(
            organizations or 3, rounds or 2, learner, workdir, json_output, scale, round_blocks
        )
    else:
        run_demo(organizations or 6, rounds or 6, seed, json_output=json_output)
