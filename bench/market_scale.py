"""One round of the real protocol at scale -> bench/results/market-scale.json (+ market-scale.png).

N synthetic organizations (default 1,000) on one Anvil (`--prune-history`, automine: a block as
transactions arrive, so at most one block per transaction), driven through every step of a round
with the project's own code:

1. keys: per organization a deterministic Ethereum account and a secp256k1 encryption key, and a
   synthetic learner (`sim.learner.SyntheticLearner`, all sharing one federation of N);
2. fund + register: each account is funded (`anvil_setBalance`), puts its profile document into a
   local content store and registers with its real encryption public key and a stake;
3. open: the real matchmaker (`matchmaker.service.Matchmaker`) reads the chain and the profiles,
   decides the round (LinUCB, every student matched) and opens it: its pairs committed on chain
   as a Merkle root (round protocol v2);
4. publish: every teacher builds its bundle, seals it to its student's registered key
   (`market.sealing.publish_sealed`, as the organization runtime does), puts it into the store and
   calls `publishBundle` with the pair's Merkle proof (`chain.client`);
5. report: every student opens and checks its bundle (`market.sealing.open_knowledge`), learns
   from it, commits to its adapter and calls `reportGain` with its proof;
6. settle: once the report deadline is past, the matchmaker settles and closes the round;
7. replay: the audit recomputes the round from chain + store (`matchmaker.audit.verify_rounds`,
   what `knexa audit replay` runs) and must find it matching.

The organizations read the public record through one shared ledger follower rather than N
identical ones (what each would read is the same); every organization keeps its own market client,
so each fetches the round's pair list and builds its Merkle tree itself, as it would on its own
machine. Every phase records its wall time, transactions, transactions per second and the gas of
its blocks. Run: `.venv/bin/python bench/market_scale.py [--orgs 1000]` (`--orgs 20`: seconds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

# Run as a script, bench/ comes first on sys.path and bench/exchange.py would shadow the package.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))

from coincurve import PrivateKey  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from web3.types import RPCEndpoint  # noqa: E402

from chain.client import DEFAULT_PARAMETERS, MarketClient, MarketParameters  # noqa: E402
from chain.devchain import DevChain  # noqa: E402
from chain.units import ether, to_wad  # noqa: E402
from exchange.cid import cid_binary, cid_text  # noqa: E402
from exchange.local import LocalStore  # noqa: E402
from market.ledger import LedgerFollower, LedgerPair, LedgerRound  # noqa: E402
from market.sealing import open_knowledge, publish_sealed  # noqa: E402
from matchmaker.audit import MATCH, summarize, verify_rounds  # noqa: E402
from matchmaker.policies import PolicyParams  # noqa: E402
from matchmaker.service import Matchmaker  # noqa: E402
from sim.learner import SyntheticLearner, synthetic_federation, synthetic_id  # noqa: E402

RESULTS = BENCH / "results"
#: `OrganizationRegistry.MAX_PAIRS_LIMIT`: the contract refuses a larger `maxPairsPerRound`.
MAX_PAIRS_LIMIT = 2048
#: Blocks of slack on top of one block per transaction in the publish and the report window.
SLACK_BLOCKS = 16
KEY_DOMAIN = "knexa-bench-market-scale"
STAKE = ether(2)
Item = TypeVar("Item")


@dataclass
class Organization:
    name: str
    account: LocalAccount
    encryption_key: PrivateKey
    learner: SyntheticLearner
    client: MarketClient | None = None

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def market(self) -> MarketClient:
        assert self.client is not None
        return self.client


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    transactions: int = 0
    first_block: int = 0
    last_block: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def _secret(index: int, what: str) -> bytes:
    return hashlib.sha256(f"{KEY_DOMAIN}/{what}/{index}".encode()).digest()


def market_parameters(orgs: int) -> MarketParameters:
    """Room for every organization's pair in one round, and a publish and a report window of one
    block per transaction (automine) plus slack: the publish deadline is `minReportWindowBlocks`
    before the report deadline the matchmaker sets."""
    return replace(
        DEFAULT_PARAMETERS,
        max_pairs_per_round=min(MAX_PAIRS_LIMIT, max(DEFAULT_PARAMETERS.max_pairs_per_round, orgs)),
        min_report_window_blocks=orgs + SLACK_BLOCKS,
    )


class Bench:
    def __init__(self, orgs: int, console: Console, workers: int = 1) -> None:
        self.orgs = orgs
        self.workers = workers
        self.console = console
        self.phases: list[Phase] = []
        self.parameters = market_parameters(orgs)
        self.pair_list_seconds = 0.0
        self.load_before = 0.0

    @contextmanager
    def phase(self, chain: DevChain | None, name: str) -> Iterator[Phase]:
        record = Phase(name)
        record.first_block = chain.w3.eth.block_number + 1 if chain is not None else 0
        began = time.perf_counter()
        yield record
        record.seconds = time.perf_counter() - began
        record.last_block = chain.w3.eth.block_number if chain is not None else 0
        self.phases.append(record)
        rate = f", {record.transactions / record.seconds:.0f} tx/s" if record.transactions else ""
        self.console.print(f"{name}: {record.seconds:.2f} s{rate}")

    def _each(self, act: Callable[[Item], int], items: Sequence[Item]) -> int:
        """`act` on every item, on `workers` threads (each item belongs to one account, so no two
        threads send from the same account); returns the sum of what `act` returns (transactions)."""
        if self.workers <= 1:
            return sum(act(item) for item in items)
        with ThreadPoolExecutor(self.workers) as pool:
            return sum(pool.map(act, items))

    def run(self) -> dict[str, Any]:
        self.load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as scratch:
            store = LocalStore(Path(scratch) / "store")
            private = LocalStore(Path(scratch) / "private")  # the organizations' adapters
            with self.phase(None, "keys"):
                federation = synthetic_federation(self.orgs)
                organizations = [
                    Organization(
                        synthetic_id(index),
                        Account.from_key(_secret(index, "account")),
                        PrivateKey(_secret(index, "encryption")),
                        SyntheticLearner(synthetic_id(index), federation=federation),
                    )
                    for index in range(self.orgs)
                ]
            with self.phase(None, "start"):
                chain = DevChain(self.parameters).start()
            try:
                return self._round(chain, store, private, organizations)
            finally:
                chain.stop()

    def _round(
        self, chain: DevChain, store: LocalStore, private: LocalStore, organizations: list[Organization]
    ) -> dict[str, Any]:
        by_address = {org.address: org for org in organizations}
        base = chain.client()
        for org in organizations:
            org.client = base.with_account(org.account)
        with self.phase(chain, "fund"):

            def fund(org: Organization) -> int:
                chain.w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [org.address, hex(ether(10))])
                return 0

            self._each(fund, organizations)

        def register(org: Organization) -> int:
            profile = cid_binary(store.put(org.learner.profile().to_bytes()))
            key = bytes(org.encryption_key.public_key.format(compressed=True))
            org.market.register(org.name, profile, key, STAKE)
            return 1

        with self.phase(chain, "register") as phase:
            phase.transactions = self._each(register, organizations)
        deploy_block = chain.deployment.deploy_block
        # The report deadline is this many blocks after the opening; the publish deadline
        # `minReportWindowBlocks` (= orgs + slack) before it.
        round_blocks = 2 * (self.orgs + SLACK_BLOCKS)
        with self.phase(chain, "open") as phase:
            matchmaker = Matchmaker(
                chain.matchmaker(),
                store,
                PolicyParams(),
                seed=0,
                from_block=deploy_block,
                round_blocks=round_blocks,
            )
            step = matchmaker.step()
            assert step.action == "opened", step
            phase.transactions = 1
        view = LedgerFollower(chain.client(), deploy_block)
        with self.phase(chain, "publish") as phase:
            ledger, _ = view.sync()
            record = ledger.open_round()
            assert record is not None
            round_id = record.round_id
            phase.detail["pairs"] = len(record.pairs)
            students: dict[str, list[LedgerPair]] = {}
            for pair in record.pairs:  # one task per teacher: its transactions go out in nonce order
                students.setdefault(pair.teacher, []).append(pair)

            def teach(pairs: list[LedgerPair]) -> int:
                teacher = by_address[pairs[0].teacher]
                for pair in pairs:
                    student = ledger.organizations[pair.student]
                    bundle = teacher.learner.teach(round_id, pair.teacher, pair.student)
                    cid = publish_sealed(
                        store,
                        bundle,
                        teacher_key=bytes(teacher.account.key),
                        recipient_public_key=student.encryption_public_key,
                    )
                    teacher.market.publish_bundle(round_id, pair.student, cid_binary(cid))
                return len(pairs)

            phase.transactions = self._each(teach, list(students.values()))
        with self.phase(chain, "report") as phase:
            ledger, _ = view.sync()
            record = ledger.rounds[round_id]

            def learn(pair: LedgerPair) -> int:
                assert pair.bundle_cid is not None
                student = by_address[pair.student]
                bundle = open_knowledge(
                    cid_text(pair.bundle_cid),
                    store,
                    student.encryption_key.secret,
                    pair.teacher,
                    round_id,
                    pair.student,
                )
                result = student.learner.learn(bundle, by_address[pair.teacher].name)
                adapter = private.put(result.adapter)
                student.market.report_gain(round_id, pair.teacher, to_wad(result.gain), cid_binary(adapter))
                return 1

            phase.transactions = self._each(learn, record.pairs)
        with self.phase(chain, "settle") as phase:
            mined_from = chain.w3.eth.block_number
            chain.mine_until(record.deadline_block + 1)
            phase.detail["empty_blocks_mined"] = chain.w3.eth.block_number - mined_from
            step = matchmaker.step()
            assert step.action == "finalized", step
            phase.transactions = 1
        with self.phase(chain, "replay") as phase:
            verdicts = verify_rounds(chain.client(), store, deploy_block)
            phase.detail["verdicts"] = summarize(verdicts)
        ledger, _ = view.sync()
        settled = ledger.rounds[round_id]
        began = time.perf_counter()
        chain.client().pair_tree(round_id)  # what each organization's own client does once a round
        self.pair_list_seconds = time.perf_counter() - began
        matched = bool(verdicts) and all(verdict.verdict == MATCH for verdict in verdicts)
        return self._result(chain, settled, matched)

    def _result(self, chain: DevChain, settled: LedgerRound, matched: bool) -> dict[str, Any]:
        gas_limit = int(chain.w3.eth.get_block("latest")["gasLimit"])
        phases = []
        for phase in self.phases:
            row: dict[str, Any] = {
                "name": phase.name,
                "seconds": round(phase.seconds, 4),
                "transactions": phase.transactions,
                "tps": round(phase.transactions / phase.seconds, 2) if phase.transactions else None,
                **phase.detail,
            }
            if phase.transactions:
                row |= _gas(chain, phase.first_block, phase.last_block, gas_limit)
            phases.append(row)
        seconds = {phase.name: phase.seconds for phase in self.phases}
        round_phases = ("open", "publish", "report", "settle")
        transactions = sum(phase.transactions for phase in self.phases)
        chain_phases = [phase for phase in self.phases if phase.transactions]
        return {
            "benchmark": "market-scale",
            "orgs": self.orgs,
            "pairs": len(settled.pairs),
            "reported": sum(pair.gain is not None for pair in settled.pairs),
            "replay_matched": matched,
            "replay_seconds": round(seconds["replay"], 4),
            "pair_list_fetch_and_verify_seconds": round(self.pair_list_seconds, 4),
            "round_seconds": round(sum(seconds[name] for name in round_phases), 4),
            "total_seconds": round(sum(seconds.values()), 4),
            "transactions": transactions,
            "tps_overall": round(transactions / sum(phase.seconds for phase in chain_phases), 2),
            "phases": phases,
            "block_gas_limit": gas_limit,
            "mining": "automine (a block as transactions arrive), anvil --prune-history",
            "workers": self.workers,
            "parameters": asdict(self.parameters),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                # other jobs share the machine: the 1-minute load average before and after the run
                "load_average": [round(self.load_before, 2), round(os.getloadavg()[0], 2)],
            },
        }


def _gas(chain: DevChain, first: int, last: int, gas_limit: int) -> dict[str, Any]:
    """Gas of the non-empty blocks in [first, last] (read after the timing)."""
    used = []
    for number in range(first, last + 1):
        block = chain.w3.eth.get_block(number)
        if block["transactions"]:
            used.append(int(block["gasUsed"]))
    if not used:
        return {}
    return {
        "blocks": len(used),
        "gas": sum(used),
        "gas_per_block_mean": round(statistics.fmean(used)),
        "gas_per_block_max": max(used),
        "max_block_share_of_limit": round(max(used) / gas_limit, 4),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1000, help="organizations (default 1000)")
    parser.add_argument("--out", type=Path, default=RESULTS / "market-scale.json")
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="threads sending the organizations' transactions (each organization stays sequential)",
    )
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.orgs < 2:
        parser.error("--orgs must be at least 2")
    console = Console()
    result = Bench(args.orgs, console, max(1, args.workers)).run()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _print(console, result)
    if not args.no_plot:
        _plot(result, args.out.with_suffix(".png"))
    console.print(f"wrote {args.out}")
    return result


def _print(console: Console, result: dict[str, Any]) -> None:
    table = Table("phase", "seconds", "tx", "tx/s", "gas/block (mean)", "gas/block (max)")
    for row in result["phases"]:
        table.add_row(
            row["name"],
            f"{row['seconds']:.2f}",
            str(row["transactions"] or ""),
            "" if row["tps"] is None else f"{row['tps']:.0f}",
            f"{row['gas_per_block_mean']:,}" if "gas_per_block_mean" in row else "",
            f"{row['gas_per_block_max']:,}" if "gas_per_block_max" in row else "",
        )
    console.print(table)
    console.print(
        f"{result['orgs']} organizations, {result['pairs']} pairs, {result['reported']} reports: "
        f"round {result['round_seconds']:.1f} s, replay {result['replay_seconds']:.2f} s "
        f"({'matched' if result['replay_matched'] else 'DID NOT MATCH'}), "
        f"everything {result['total_seconds']:.1f} s; "
        f"block gas limit {result['block_gas_limit']:,}"
    )


def _plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is optional; the JSON is the result
        return
    rows = result["phases"]
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.barh([row["name"] for row in rows][::-1], [row["seconds"] for row in rows][::-1])
    axis.set_xlabel("seconds")
    axis.set_title(
        f"one round, {result['orgs']} organizations, {result['pairs']} pairs "
        f"(round {result['round_seconds']:.0f} s)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
