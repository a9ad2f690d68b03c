"""Gas per marketplace call on a real Anvil node -> bench/results/gas.json (+ gas.png).

Round protocol v2: `openRound` checks the pair list and stores its Merkle root; every report settles
its pair; `settleRound` re-hashes the list and settles what is left. Measured as a function of the
number of pairs (1, 8, 64, 256, 1,000): openRound, settleRound when every pair reported and when no
teacher delivered (every pair a slashed no-show), open + settle per pair, and whether a whole round
fits one 30M-gas block; plus register, updateProfile, publishBundle, reportGain, disputeBundle,
resolveDispute and withdraw, and an opcode breakdown (debug_traceTransaction) of openRound and
settleRound at 256 pairs.

Run: `.venv/bin/python bench/gas.py` (a few minutes: 1,001 registrations and 2,000 exchanges).
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

from chain.accounts import dev_account
from chain.client import DEFAULT_PARAMETERS, MarketClient
from chain.devchain import DevChain
from chain.units import ether, to_wad

RESULTS = Path(__file__).resolve().parent / "results"
PAIR_COUNTS = (1, 8, 64, 256, 1000)
BREAKDOWN_PAIRS = 256
BLOCK_GAS = 30_000_000
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


def _opcodes(chain: DevChain, transaction_hash: str) -> dict[str, int]:
    """Gas per opcode of one transaction (the struct logger's per-step cost, summed)."""
    trace = chain.w3.provider.make_request(  # type: ignore[attr-defined]
        "debug_traceTransaction", [transaction_hash, {"disableStorage": True, "disableMemory": True}]
    )
    totals: dict[str, int] = {}
    for step in trace["result"]["structLogs"]:
        totals[step["op"]] = totals.get(step["op"], 0) + int(step["gasCost"])
    top = sorted(totals.items(), key=lambda item: -item[1])[:12]
    return dict(top)


def _round(
    chain: DevChain, orgs: list[MarketClient], pairs: int, deliver: bool, trace: bool = False
) -> dict[str, Any]:
    """One round over the ring orgs[0] -> orgs[1] -> ... -> orgs[pairs] (pairs + 1 organizations)."""
    addresses = [org.account.address for org in orgs[: pairs + 1] if org.account is not None]
    ring = [(addresses[index], addresses[index + 1]) for index in range(pairs)]
    matchmaker = chain.matchmaker()
    round_id = matchmaker.next_round_id()
    head = chain.w3.eth.block_number
    publish_by = head + pairs + 5
    report_by = publish_by + pairs + 5
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
    settled = matchmaker.settle_round(round_id)
    result: dict[str, Any] = {
        "open": opened.gas_used,
        "settle": settled.gas_used,
        "publish": statistics.median(publish) if publish else None,
        "report": statistics.median(report) if report else None,
    }
    if trace:
        result["opcodes"] = {
            "openRound": _opcodes(chain, opened.transaction_hash),
            "settleRound": _opcodes(chain, settled.transaction_hash),
        }
    return result


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
    with DevChain(parameters=parameters) as chain, Progress(console=console) as progress:
        organizations = max(PAIR_COUNTS) + 1
        task = progress.add_task("registering organizations", total=organizations)
        orgs = _fund_organizations(chain, organizations)
        register_gas = []
        for index, org in enumerate(orgs):
            register_gas.append(org.register(f"org-{index:04d}", CID, KEY, ether(2)).gas_used)
            progress.advance(task)
        update_gas = orgs[0].update_profile(CID[:-1] + b"\xff").gas_used

        per_pairs: dict[int, dict[str, Any]] = {}
        opcodes: dict[str, Any] = {}
        task = progress.add_task("rounds", total=2 * len(PAIR_COUNTS))
        for pairs in PAIR_COUNTS:
            delivered = _round(chain, orgs, pairs, deliver=True, trace=pairs == BREAKDOWN_PAIRS)
            progress.advance(task)
            absent = _round(chain, orgs, pairs, deliver=False)
            progress.advance(task)
            if "opcodes" in delivered:
                opcodes = {"pairs": pairs, **delivered["opcodes"]}
            per_pairs[pairs] = {
                "open_round": delivered["open"],
                "open_round_per_pair": round(delivered["open"] / pairs),
                "settle_all_reported": delivered["settle"],
                "settle_no_shows": absent["settle"],
                "open_settle_per_pair_all_reported": round((delivered["open"] + delivered["settle"]) / pairs),
                "open_settle_per_pair_no_shows": round((absent["open"] + absent["settle"]) / pairs),
                "round_share_of_30m_block": round((absent["open"] + absent["settle"]) / BLOCK_GAS, 4),
                "publish_bundle": delivered["publish"],
                "report_gain": delivered["report"],
            }
        disputes = _dispute_costs(chain, orgs)
        withdraw_gas = orgs[1].withdraw().gas_used
        block_gas_limit = chain.w3.eth.get_block("latest")["gasLimit"]

    result = {
        "benchmark": "gas",
        "protocol": "v2 (Merkle-committed pairs, settlement in reportGain)",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "compiler": "solc 0.8.37, via-IR, optimizer 200 runs, evm cancun",
        "block_gas_limit": block_gas_limit,
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
        f"withdraw {result['withdraw']:,} (block gas limit {result['block_gas_limit']:,})"
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
