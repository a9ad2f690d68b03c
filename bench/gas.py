"""Gas per marketplace call on a real Anvil node -> bench/results/gas.json (+ gas.png).

Round protocol v2: `openRound` checks the pair list and stores its Merkle root; every report settles
its pair; `settleRound` re-hashes the list and settles what is left. Measured as a function of the
number of pairs (1, 8, 64, 256, 1,000): openRound, settleRound when every pair reported and when no
teacher delivered (every pair a slashed no-show), open + settle per pair, and whether a whole round
fits one 30M-gas block; plus register, updateProfile, publishBundle, reportGain, disputeBundle,
resolveDispute and withdraw, and an opcode breakdown (debug_traceCall) of openRound and
settleRound at 256 pairs (a round of no-shows).

Worst cases by construction: the no-show rounds run first, each on organizations never paired
before (every slash pays a beneficiary that was never owed anything), on a node whose block gas
limit is raised so that a call over 30M gas is measured and reported as not fitting.

Run: `.venv/bin/python bench/gas.py` (10-20 minutes: 1,334 registrations and 2,658 exchanges).
"""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from web3.types import RPCEndpoint

from chain.accounts import dev_account
from chain.anvil import AnvilNode
from chain.client import DEFAULT_PARAMETERS, MarketClient
from chain.devchain import DevChain
from chain.merkle import PairTree
from chain.units import ether, to_wad

RESULTS = Path(__file__).resolve().parent / "results"
PAIR_COUNTS = (1, 8, 64, 256, 1000)
BREAKDOWN_PAIRS = 256
BLOCK_GAS = 30_000_000
# The node's own block gas limit is raised above BLOCK_GAS so that a call that would not fit one 30M
# block is still measured (and reported as not fitting) instead of failing to mine.
NODE_GAS_LIMIT = 100_000_000
MIN_ROUND_BLOCKS = DEFAULT_PARAMETERS.min_round_blocks
MIN_REPORT_WINDOW_BLOCKS = DEFAULT_PARAMETERS.min_report_window_blocks
CID = bytes.fromhex("01551220") + bytes(range(32))  # a 36-byte CIDv1 (raw, sha2-256)
KEY = bytes.fromhex("02") + bytes(range(32))


def _fund_organizations(chain: DevChain, count: int) -> list[MarketClient]:
    """`count` fresh, deterministic accounts funded by dev account 9."""
    funder = dev_account(9)
    accounts: list[LocalAccount] = [
        Account.from_key((0xC0DE0000 + index).to_bytes(32, "big")) for index in range(count)
    ]
    nonce = chain.w3.eth.get_transaction_count(funder.address)
    # Fixed fee cap from the current base fee (eth_gasPrice echoes recent prices, so it would compound).
    fee_cap = 2 * int(chain.w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9
    hashes = []
    for offset, account in enumerate(accounts):
        signed = funder.sign_transaction(
            {
                "to": account.address,
                "value": ether(5),
                "gas": 21_000,
                "maxFeePerGas": fee_cap,
                "maxPriorityFeePerGas": 10**9,
                "nonce": nonce + offset,
                "chainId": chain.w3.eth.chain_id,
            }
        )
        hashes.append(chain.w3.eth.send_raw_transaction(signed.raw_transaction))
    for transaction_hash in hashes:
        chain.w3.eth.wait_for_transaction_receipt(transaction_hash)
    return [chain.client(account) for account in accounts]


def _opcodes(chain: DevChain, sender: str, data: str) -> dict[str, int]:
    """Gas per opcode of a call to the market from `sender` on the latest state (the struct logger's
    per-step cost, summed; the top 12). Traced as a call just before the transaction is sent: a
    pruning node keeps no state to replay a mined transaction on."""
    call = {"from": sender, "to": chain.deployment.market_address, "data": data, "gas": hex(NODE_GAS_LIMIT)}
    trace = chain.w3.provider.make_request(
        RPCEndpoint("debug_traceCall"), [call, "latest", {"disableStorage": True, "disableMemory": True}]
    )
    if "result" not in trace or not trace["result"].get("structLogs"):
        raise RuntimeError(f"debug_traceCall gave no opcode trace: {str(trace)[:300]}")
    totals: dict[str, int] = {}
    for step in trace["result"]["structLogs"]:
        totals[step["op"]] = totals.get(step["op"], 0) + int(step["gasCost"])
    top = sorted(totals.items(), key=lambda item: -item[1])[:12]
    return dict(top)


def _round(
    chain: DevChain, orgs: list[MarketClient], pairs: int, deliver: bool, trace: bool = False
) -> dict[str, Any]:
    """One round over the chain orgs[0] -> orgs[1] -> ... -> orgs[pairs] (pairs + 1 organizations)."""
    addresses = [org.account.address for org in orgs[: pairs + 1] if org.account is not None]
    ring = [(addresses[index], addresses[index + 1]) for index in range(pairs)]
    matchmaker = chain.matchmaker()
    assert matchmaker.account is not None
    round_id = matchmaker.next_round_id()
    head = chain.w3.eth.block_number
    # Automine: one block per transaction, so a delivered round needs a block per publish and report.
    # A round without deliveries gets the shortest deadlines (mining thousands of empty blocks is slow).
    slack = pairs + 5 if deliver else 0
    publish_by = head + 1 + MIN_ROUND_BLOCKS + slack  # openRound itself is mined in block head + 1
    report_by = publish_by + MIN_REPORT_WINDOW_BLOCKS + slack
    opcodes: dict[str, Any] = {}
    if trace:
        packed = PairTree.build(round_id, ring).packed()
        data = matchmaker.contract.encode_abi(
            "openRound", args=[round_id, CID, b"\x01" * 32, packed, publish_by, report_by]
        )
        opcodes["openRound"] = _opcodes(chain, matchmaker.account.address, data)
    opened = matchmaker.open_round(
        round_id, CID, b"\x01" * 32, ring, publish_deadline=publish_by, report_deadline=report_by
    )
    publish, report = [], []
    if deliver:
        for index in range(pairs):
            publish.append(orgs[index].publish_bundle(round_id, addresses[index + 1], CID).gas_used)
        for index in range(pairs):
            report.append(orgs[index + 1].report_gain(round_id, addresses[index], to_wad(0.05), CID).gas_used)
    chain.mine_until(report_by + 1)
    if trace:
        settle_args = [round_id, _settle_list(matchmaker, round_id)]
        data = matchmaker.contract.encode_abi("settleRound", args=settle_args)
        opcodes["settleRound"] = _opcodes(chain, matchmaker.account.address, data)
    settled = matchmaker.settle_round(round_id)
    result: dict[str, Any] = {
        "open": opened.gas_used,
        "settle": settled.gas_used,
        "publish": statistics.median(publish) if publish else None,
        "report": statistics.median(report) if report else None,
    }
    if trace:
        result["opcodes"] = opcodes
    return result


def _settle_list(client: MarketClient, round_id: int) -> bytes:
    """The pair list `MarketClient.settle_round` sends (empty when no pair is left to settle)."""
    return client.pair_tree(round_id).packed() if client.unsettled_pairs(round_id) else b""


def _dispute_costs(chain: DevChain, orgs: list[MarketClient]) -> dict[str, int]:
    """disputeBundle and resolveDispute (defective) on a one-pair round."""
    teacher, student = orgs[0], orgs[1]
    assert teacher.account is not None
    assert student.account is not None
    matchmaker = chain.matchmaker()
    round_id = matchmaker.next_round_id()
    head = chain.w3.eth.block_number
    matchmaker.open_round(
        round_id,
        CID,
        b"\x01" * 32,
        [(teacher.account.address, student.account.address)],
        publish_deadline=head + 3,
        report_deadline=head + 6,
    )
    teacher.publish_bundle(round_id, student.account.address, CID)
    dispute = student.dispute_bundle(round_id, teacher.account.address, CID).gas_used
    chain.mine_until(head + 4)
    verdict = matchmaker.resolve_dispute(
        round_id, teacher.account.address, student.account.address, True, CID
    ).gas_used
    chain.mine_until(head + 7)
    matchmaker.settle_round(round_id)
    return {"dispute_bundle": dispute, "resolve_dispute": verdict}


def main() -> dict[str, Any]:
    console = Console()
    parameters = replace(DEFAULT_PARAMETERS, max_pairs_per_round=max(PAIR_COUNTS), min_stake=ether(1))
    with (
        AnvilNode(gas_limit=NODE_GAS_LIMIT) as node,
        DevChain(parameters=parameters, node=node) as chain,
        Progress(console=console) as progress,
    ):
        # The no-show rounds come first, each on organizations never paired before, so that every
        # slash meets the worst case (a beneficiary that was never owed anything). The delivered
        # rounds reuse the first max(PAIR_COUNTS) + 1 organizations.
        organizations = sum(pairs + 1 for pairs in PAIR_COUNTS)
        task = progress.add_task("registering organizations", total=organizations)
        orgs = _fund_organizations(chain, organizations)
        register_gas = []
        for index, org in enumerate(orgs):
            register_gas.append(org.register(f"org-{index:04d}", CID, KEY, ether(2)).gas_used)
            progress.advance(task)
        update_gas = orgs[0].update_profile(CID[:-1] + b"\xff").gas_used

        task = progress.add_task("rounds", total=2 * len(PAIR_COUNTS))
        absent_rounds: dict[int, dict[str, Any]] = {}
        offset = 0
        for pairs in PAIR_COUNTS:
            absent_rounds[pairs] = _round(
                chain, orgs[offset : offset + pairs + 1], pairs, deliver=False, trace=pairs == BREAKDOWN_PAIRS
            )
            offset += pairs + 1
            progress.advance(task)
        per_pairs: dict[int, dict[str, Any]] = {}
        for pairs in PAIR_COUNTS:
            delivered = _round(chain, orgs, pairs, deliver=True)
            progress.advance(task)
            absent = absent_rounds[pairs]
            per_pairs[pairs] = {
                "open_round": delivered["open"],
                "open_round_per_pair": round(delivered["open"] / pairs),
                "settle_all_reported": delivered["settle"],
                "settle_no_shows": absent["settle"],
                "open_settle_per_pair_all_reported": round((delivered["open"] + delivered["settle"]) / pairs),
                "open_settle_per_pair_no_shows": round((absent["open"] + absent["settle"]) / pairs),
                "round_share_of_30m_block": round((absent["open"] + absent["settle"]) / BLOCK_GAS, 4),
                "open_fits_30m_block": delivered["open"] <= BLOCK_GAS,
                "settle_no_shows_fits_30m_block": absent["settle"] <= BLOCK_GAS,
                "round_fits_one_30m_block": absent["open"] + absent["settle"] <= BLOCK_GAS,
                "publish_bundle": delivered["publish"],
                "report_gain": delivered["report"],
                "open_settle_publish_report_per_pair": round(
                    (delivered["open"] + delivered["settle"]) / pairs
                    + delivered["publish"]
                    + delivered["report"]
                ),
            }
        traced = absent_rounds[BREAKDOWN_PAIRS]["opcodes"]
        opcodes = {"pairs": BREAKDOWN_PAIRS, "round": "all no-shows", **traced}
        disputes = _dispute_costs(chain, orgs)
        withdraw_gas = orgs[1].withdraw().gas_used

    result = {
        "benchmark": "gas",
        "protocol": "v2 (Merkle-committed pairs, settlement in reportGain)",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "compiler": "solc 0.8.37, via-IR, optimizer 200 runs, evm cancun",
        "block_gas_target": BLOCK_GAS,
        "node_block_gas_limit": NODE_GAS_LIMIT,
        "register": statistics.median(register_gas[1:]),
        "register_first": register_gas[0],
        "update_profile": update_gas,
        "withdraw": withdraw_gas,
        **disputes,
        "by_pairs": {str(key): value for key, value in per_pairs.items()},
        "opcode_breakdown": opcodes,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gas.json").write_text(json.dumps(result, indent=2) + "\n")
    _print(console, result)
    _plot(per_pairs)
    return result


def _print(console: Console, result: dict[str, Any]) -> None:
    console.print(
        f"register {result['register']:,} gas, updateProfile {result['update_profile']:,}, "
        f"disputeBundle {result['dispute_bundle']:,}, resolveDispute {result['resolve_dispute']:,}, "
        f"withdraw {result['withdraw']:,} (block {result['block_gas_target']:,} gas)"
    )
    table = Table(
        "pairs",
        "openRound",
        "settle (all reported)",
        "settle (no-shows)",
        "open+settle/pair",
        "no-shows/pair",
        "block share",
        "publish",
        "report",
    )
    for pairs, row in result["by_pairs"].items():
        table.add_row(
            pairs,
            f"{row['open_round']:,}",
            f"{row['settle_all_reported']:,}",
            f"{row['settle_no_shows']:,}",
            f"{row['open_settle_per_pair_all_reported']:,}",
            f"{row['open_settle_per_pair_no_shows']:,}",
            f"{row['round_share_of_30m_block']:.1%}",
            f"{row['publish_bundle']:,.0f}",
            f"{row['report_gain']:,.0f}",
        )
    console.print(table)
    breakdown = result["opcode_breakdown"]
    for name in ("openRound", "settleRound"):
        top = ", ".join(f"{op} {gas:,}" for op, gas in list(breakdown[name].items())[:8])
        console.print(f"{name} at {breakdown['pairs']} pairs, by opcode: {top}")


def _plot(per_pairs: dict[int, dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is optional; the JSON is the result
        return
    pairs = sorted(per_pairs)
    figure, axis = plt.subplots(figsize=(6, 4))
    for key, label in [
        ("open_round", "openRound"),
        ("settle_all_reported", "settleRound (all reported)"),
        ("settle_no_shows", "settleRound (all no-shows)"),
    ]:
        axis.plot(pairs, [per_pairs[count][key] / 1e6 for count in pairs], marker="o", label=label)
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("pairs in the round")
    axis.set_ylabel("gas (millions, log scale)")
    axis.set_title("knexa: gas per round operation")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(RESULTS / "gas.png", dpi=120)


if __name__ == "__main__":
    main()
