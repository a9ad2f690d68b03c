"""`knexa demo`: the main job end to end on the embedded default.

A federation of organizations trades on a throw-away local Anvil chain with a local content
store: registration with profiles, LinUCB matchmaking with committed decision records, sealed
knowledge bundles, reported gains, finalization, and an independent replay of every round.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from knexa.market_demo import RoundOutcome, run_market_demo

if TYPE_CHECKING:
    from knexa.process_demo import ProcessDemoReport


def run_demo(organizations: int = 6, rounds: int = 6, seed: int = 0, json_output: bool = False) -> None:
    console = Console(stderr=json_output)
    console.rule(f"knexa demo: {organizations} organizations, {rounds} rounds on a local chain")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rounds", total=rounds)

        def advance(outcome: RoundOutcome) -> None:
            progress.advance(task)

        report = run_market_demo(organizations, rounds, seed, on_round=advance)
    if json_output:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        return
    full = Path(tempfile.mkstemp(prefix="knexa-demo-", suffix=".json")[1])
    full.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    console.print(f"market deployed at {report.market}")
    for outcome in report.rounds:
        table = Table(
            "teacher",
            "student",
            "UCB score",
            "reported gain",
            "true gain",
            "bundle CID",
            title=(
                f"round {outcome.round_id}: chosen {outcome.chosen_value:+.4f} "
                f"vs best {outcome.oracle_value:+.4f}"
            ),
        )
        for pair in outcome.pairs:
            reported = "no report" if pair.reported_gain is None else f"{pair.reported_gain:+.4f}"
            table.add_row(
                pair.teacher,
                pair.student,
                f"{pair.score:.4f}",
                reported,
                f"{pair.true_gain:+.4f}",
                pair.bundle_cid[:16] + "…",
            )
        console.print(table)
    console.print(balances_table(report.organizations, "earned"))
    verdicts = Table("round", "replay verdict", "detail", title="independent replay from chain + store")
    for verdict in report.verdicts:
        verdicts.add_row(str(verdict.round_id), verdict.verdict, verdict.detail)
    console.print(verdicts)
    console.print(
        f"The matchmaker's pairings realised {100 * report.share_of_oracle():.1f}% of the best possible "
        "true gain (oracle matching) over these rounds. Anvil stopped; nothing left running."
    )
    console.print(f"Full CIDs (the table shortens them): {full}")


def balances_table(organizations: list[dict[str, Any]], money: str) -> Table:
    """Each organization's stake, `money` (``org[money + "_eth"]``), reputation and credits."""
    table = Table(
        "organization", "stake (ETH)", f"{money} (ETH)", "reputation", "credits", title="after the rounds"
    )
    for org in organizations:
        table.add_row(
            org["name"],
            f"{org['stake_eth']:.4f}",
            f"{org[money + '_eth']:.4f}",
            f"{org['reputation']:.3f}",
            f"{org['credits']:.4f}",
        )
    return table


def run_process_demo_cli(
    organizations: int,
    rounds: int,
    learner: str,
    workdir: Path | None,
    json_output: bool,
    scale: str = "tiny",
    round_blocks: int | None = None,
) -> None:
    """`knexa demo --processes`: the market as separate processes, summarised."""
    from knexa.process_demo import run_process_demo

    console = Console(stderr=json_output)
    console.rule(f"knexa demo: {organizations} organizations as separate processes, {rounds} rounds")
    report = run_process_demo(
        organizations,
        rounds,
        learner,
        round_blocks=round_blocks,
        scale=scale,
        workdir=workdir,
        on_progress=lambda message: console.print(f"• {message}"),
    )
    if json_output:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        return
    print_process_report(report, console)


def print_process_report(report: ProcessDemoReport, console: Console) -> None:
    """Per round: pairs, bundle CIDs, gains, rewards, slashes, reputation; then balances and verdicts."""
    for entry in report.rounds:
        table = Table(
            "teacher", "student", "bundle CID", "gain", "reward (ETH)", title=f"round {entry['round']}"
        )
        for pair in entry["pairs"]:
            gain = pair.get("gain")
            table.add_row(
                pair["teacher"],
                pair["student"],
                (pair["bundle"] or "none")[:20] + ("…" if pair["bundle"] else ""),
                ("disputed" if pair.get("disputed") else "no report") if gain is None else f"{gain:+.4f}",
                f"{pair.get('reward_eth', 0.0):.4f}",
            )
        console.print(table)
        for dispute in entry.get("disputes", []):
            console.print(
                f"  dispute: {dispute['student']} disputed the bundle of {dispute['teacher']} "
                f"(evidence {dispute['evidence']}); ruled {dispute['outcome']}, verdict {dispute['verdict']}"
            )
        for slash in entry["slashes"]:
            console.print(f"  slashed: {slash['offender']} lost {slash['eth']:.4f} ETH")
        latest = {r["organization"]: r["after"] for r in entry["reputation"]}  # last update wins
        if latest:
            moved = ", ".join(f"{name} {after:.3f}" for name, after in sorted(latest.items()))
            console.print(f"  reputation after the round: {moved}")
    console.print(balances_table(report.organizations, "withdrawable"))
    for verdict in report.verdicts:
        console.print(f"replay of round {verdict['round']}: {verdict['verdict']} ({verdict['detail']})")
        for dispute in verdict.get("disputes", []):
            console.print(
                f"  replay of the dispute of pair {dispute['pair_index']}: {dispute['verdict']} "
                f"(ruled {dispute['outcome']}; {dispute['detail']})"
            )
    console.print(
        f"Full CIDs: {report.file}. Logs of every process: {report.logs}. All processes stopped. "
        "To watch a market live in the "
        "audit explorer, run the stack (`docker compose up`, explorer on http://127.0.0.1:8000) or "
        "`knexa chain up` + `knexa explorer serve` (see the README)."
    )
