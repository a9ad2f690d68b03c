"""Replay time against history length -> bench/results/replay.json (+ replay.png).

A market of N synthetic organizations (real keys, real profiles in a local store) plays R rounds
on a real Anvil driven by the real matchmaker (`matchmaker.service.Matchmaker`): each round is
decided, committed, opened and finalized. To keep the history cheap to make, organizations do not
publish (the market's parameters set `slashBps = 0`, so no-shows cost nothing and everyone stays
eligible); what replay recomputes, the decisions, is exactly as expensive as in a busy market.
Then one `matchmaker.audit.Replayer` advances through the history checkpoint by checkpoint and the
bench records each segment's milliseconds per round, which stay flat when replay is linear in the
history; before each segment it times a fixed reference (the first 10 rounds from scratch), so a
segment slowed by a busy machine can be told from one slowed by the history. Last, a full replay
from scratch (what `knexa audit replay` does).

Run: `.venv/bin/python bench/replay.py [--orgs 100] [--rounds 1000]` (defaults: 100, 1000; about
half an hour on 2 cores). `--orgs 20 --rounds 200` takes a few minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on sys.path and bench/exchange.py would shadow the package.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))

from eth_account import Account  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from chain.client import DEFAULT_PARAMETERS  # noqa: E402
from chain.devchain import DevChain  # noqa: E402
from chain.units import ether  # noqa: E402
from exchange.cid import cid_binary  # noqa: E402
from exchange.local import LocalStore  # noqa: E402
from matchmaker.audit import MATCH, Replayer, read_history  # noqa: E402
from matchmaker.policies import PolicyParams  # noqa: E402
from matchmaker.service import Matchmaker  # noqa: E402
from sim.learner import SyntheticLearner  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _register(chain: DevChain, store: LocalStore, orgs: int) -> None:
    for index in range(orgs):
        account = Account.from_key(hashlib.sha256(f"knexa-bench-replay/{index}".encode()).digest())
        chain.w3.provider.make_request("anvil_setBalance", [account.address, hex(ether(10))])  # type: ignore[arg-type]
        name = f"org-{index:05d}"
        profile = cid_binary(store.put(SyntheticLearner(name).profile().to_bytes()))
        key = bytes.fromhex("02") + hashlib.sha256(name.encode()).digest()
        chain.client(account).register(name, profile, key, ether(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS / "replay.json")
    args = parser.parse_args()
    console = Console()
    parameters = replace(DEFAULT_PARAMETERS, slash_bps=0, max_pairs_per_round=256, exchange_fee=0)
    checkpoints = sorted({r for r in (10, 50, 100, 250, 500, 1000, args.rounds) if r <= args.rounds})
    result: dict[str, Any] = {
        "orgs": args.orgs,
        "rounds": args.rounds,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "replay": [],
    }
    with (
        tempfile.TemporaryDirectory() as scratch,
        DevChain(parameters) as chain,
        Progress(console=console) as bar,
    ):
        store = LocalStore(Path(scratch) / "store")
        _register(chain, store, args.orgs)
        matchmaker = Matchmaker(
            chain.matchmaker(),
            store,
            PolicyParams(),
            seed=0,
            from_block=chain.deployment.deploy_block,
            round_blocks=6,  # >= min_round_blocks + min_report_window_blocks + 1 (the tx lands a block later)
        )
        task = bar.add_task("history", total=args.rounds)
        started = time.perf_counter()
        finalized = 0
        while finalized < args.rounds:
            step = matchmaker.step()
            if step.action == "waiting":
                chain.mine(2)
            elif step.action == "finalized":
                finalized += 1
                bar.advance(task)
        result["history_s"] = time.perf_counter() - started
        events = read_history(chain.client(), chain.deployment.deploy_block)
        reader = chain.client()
        initial = int(reader.call(reader.contract.functions.INITIAL_REPUTATION()))
        last_block = {int(e.args["roundId"]): e.block_number for e in events if e.name == "RoundFinalized"}

        def prefix(rounds: int) -> list[Any]:
            return [event for event in events if event.block_number <= last_block[rounds]]

        def reference() -> float:
            """A fixed piece of work (the first 10 rounds, from scratch): the load gauge."""
            began = time.perf_counter()
            Replayer(store, initial).advance(prefix(min(10, args.rounds)))
            return time.perf_counter() - began

        # One replayer advanced checkpoint by checkpoint (what the live matchmaker and the explorer
        # do): the time of each segment per round stays flat when replay is linear. Before each
        # segment, the reference is timed again, so a segment slowed by a busy machine shows as such.
        replayer = Replayer(store, initial)
        done = 0
        total = 0.0
        for rounds in checkpoints:
            gauge = reference()
            began = time.perf_counter()
            verdicts = replayer.advance(prefix(rounds))
            seconds = time.perf_counter() - began
            total += seconds
            assert all(v.verdict == MATCH for v in verdicts), [v for v in verdicts if v.verdict != MATCH][:1]
            row = {
                "rounds": rounds,
                "events": len(prefix(rounds)),
                "segment_rounds": rounds - done,
                "segment_seconds": seconds,
                "segment_ms_per_round": 1000 * seconds / (rounds - done),
                "cumulative_seconds": total,
                "reference_seconds": gauge,
                "segment_ms_per_round_in_reference_units": (seconds / (rounds - done)) / gauge,
            }
            done = rounds
            result["replay"].append(row)
            console.print(
                f"rounds {row['rounds'] - row['segment_rounds'] + 1}-{rounds}: "
                f"{row['segment_ms_per_round']:.1f} ms/round (reference {gauge:.2f} s), "
                f"cumulative {total:.1f} s"
            )
        gauge = reference()
        began = time.perf_counter()
        verdicts = Replayer(store, initial).advance(events)
        result["full_replay"] = {
            "rounds": args.rounds,
            "seconds": time.perf_counter() - began,
            "reference_seconds_before": gauge,
            "verdicts_match": all(v.verdict == MATCH for v in verdicts),
        }
        console.print(
            f"full replay of {args.rounds} rounds from scratch: {result['full_replay']['seconds']:.1f} s"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _plot(result, args.out.with_suffix(".png"))
    console.print(f"wrote {args.out}")


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["replay"]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([r["rounds"] for r in rows], [r["cumulative_seconds"] for r in rows], marker="o")
    axis.set_xlabel("rounds replayed (one incremental replayer)")
    axis.set_ylabel("cumulative seconds")
    axis.set_title(f"replay time, {result['orgs']} organizations")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
