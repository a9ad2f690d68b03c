"""The `knexa` command: one Typer app; each package contributes its own command group.

The groups are mounted lazily: `knexa --help` and `knexa version` import no package of the market
(web3, torch and friends take seconds to import), and `knexa org ...` imports only what `org` needs.
Each group is loaded by a small function with a plain import, so the layering test sees every arrow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer

# typer 0.29 vendors click; its group class speaks these types (pinned version, see pyproject.toml)
from typer._click.core import Command, Context
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup

from clikit import EXIT_CODES_HELP
from knexa import __version__


def _chain() -> typer.Typer:
    from chain.cli import app

    return app


def _exchange() -> typer.Typer:
    from exchange.cli import app

    return app


def _matchmaker() -> typer.Typer:
    from matchmaker.cli import app
    from matchmaker.commands import register
    from sim.cli import simulate

    if not any(command.name == "run" for command in app.registered_commands):
        register(app)
        # `knexa matchmaker simulate` stays as the name users know; it is `knexa sim simulate`.
        app.command("simulate")(simulate)
    return app


def _audit() -> typer.Typer:
    from matchmaker.commands import audit_app

    return audit_app


def _explorer() -> typer.Typer:
    from explorer.cli import app

    return app


def _org() -> typer.Typer:
    from org.cli import app
    from sim import learner as synthetic_learner

    # Organizations can run simulated skills (`knexa org init --learner synthetic`).
    synthetic_learner.register()
    return app


def _agent() -> typer.Typer:
    from agent.cli import app

    return app


def _sim() -> typer.Typer:
    from sim.cli import app

    return app


@dataclass(frozen=True)
class LazyGroup:
    """A command group loaded on first use; `help` is what `knexa --help` shows without loading it."""

    load: Callable[[], typer.Typer]
    help: str


GROUPS: dict[str, LazyGroup] = {
    "chain": LazyGroup(_chain, "The marketplace contracts on an EVM chain (Anvil locally)."),
    "exchange": LazyGroup(_exchange, "Content-addressed exchange: exact IPFS CIDs, stores, sealed bundles."),
    "matchmaker": LazyGroup(_matchmaker, "The matchmaker: LinUCB over sanitised profiles, rounds on chain."),
    "audit": LazyGroup(_audit, "Audit the marketplace from its public record."),
    "explorer": LazyGroup(_explorer, "The audit explorer: a web page and JSON API over chain + store."),
    "org": LazyGroup(_org, "Run an organization: identity, registration, the agent, stake."),
    "agent": LazyGroup(_agent, "The learning core: data suite, model zoo, Pass@1 evaluation."),
    "sim": LazyGroup(_sim, "Simulations: synthetic federations and policy comparisons."),
}


class KnexaGroup(TyperGroup):
    """The top group: its own commands, plus the `GROUPS`, converted to click only when invoked."""

    _loaded: dict[str, Command] = {}  # noqa: RUF012 - one cache for the process
    _listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *GROUPS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in GROUPS:
            own: Command | None = super().get_command(ctx, cmd_name)
            return own
        if self._listing:  # `knexa --help`: the group's one-line help, without importing it
            return TyperGroup(name=cmd_name, help=GROUPS[cmd_name].help, short_help=GROUPS[cmd_name].help)
        if cmd_name not in self._loaded:
            group: Command = typer.main.get_group(GROUPS[cmd_name].load())
            group.name = cmd_name
            self._loaded[cmd_name] = group
        return self._loaded[cmd_name]

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        KnexaGroup._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            KnexaGroup._listing = False


app = typer.Typer(
    name="knexa",
    cls=KnexaGroup,
    help="knexa: a blockchain-audited marketplace where organizations improve small code LLMs together.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
)


def load_group(name: str) -> typer.Typer:
    """The Typer app of command group `name` (loading it), e.g. for tests that inspect a group."""
    return GROUPS[name].load()


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
    """Run the end-to-end demo on the embedded default (a local chain and store, removed afterwards)."""
    from knexa.demo import run_demo, run_process_demo_cli

    if processes:
        run_process_demo_cli(
            organizations or 3, rounds or 2, learner, workdir, json_output, scale, round_blocks
        )
    else:
        run_demo(organizations or 6, rounds or 6, seed, json_output=json_output)
