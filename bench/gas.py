"""Gas per marketplace call on a real Anvil node -> bench/results/gas.json (+ gas.png).

Measures register, updateProfile, openRound and finalizeRound as a function of the number of pairs
(1, 8, 64, the default maximum 128 and the hard limit 256), publishBundle, reportGain and withdraw.
Finalization is measured for the two extremes: every pair delivered and reported, and no pair
delivered (every teacher slashed, every fee refunded).

Run: `.venv/bin/python bench/gas.py` (about a minute).
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
PAIR_COUNTS = (1, 8, 64, 128, 256)
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


def _round(chain: DevChain, orgs: list[MarketClient], pairs: int, deliver: bool) -> dict[str, Any]:
    """One round over the ring orgs[0] -> orgs[1] -> ... -> orgs[pairs] (pairs + 1 organizations)."""
    addresses = [org.account.address for org in orgs[: pairs + 1] if org.account is not None]
    ring = [(addresses[index], addresses[index + 1]) for index in range(pairs)]
    matchmaker = chain.matchmaker()
    round_id = matchmaker.next_round_id()
    deadline = chain.w3.eth.block_number + 2 * pairs + 10
    opened = matchmaker.open_round(round_id, CID, b"\x01" * 32, ring, deadline)
    publish, report = [], []
    if deliver:
        for index in range(pairs):
            publish.append(orgs[index].publish_bundle(round_id, addresses[index + 1], CID).gas_used)
            report.append(orgs[index + 1].report_gain(round_id, addresses[index], to_wad(0.05), CID).gas_used)
    chain.mine_until(deadline + 1)
    finalized = matchmaker.finalize_round(round_id)
    return {
        "open": opened.gas_used,
        "finalize": finalized.gas_used,
        "publish": statistics.median(publish) if publish else None,
        "report": statistics.median(report) if report else None,
    }


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
        task = progress.add_task("rounds", total=2 * len(PAIR_COUNTS))
        for pairs in PAIR_COUNTS:
            delivered = _round(chain, orgs, pairs, deliver=True)
            progress.advance(task)
            absent = _round(chain, orgs, pairs, deliver=False)
            progress.advance(task)
            per_pairs[pairs] = {
                "open_round": delivered["open"],
                "open_round_per_pair": round(delivered["open"] / pairs),
                "finalize_all_delivered": delivered["finalize"],
                "finalize_all_delivered_per_pair": round(delivered["finalize"] / pairs),
                "finalize_none_delivered": absent["finalize"],
                "publish_bundle": delivered["publish"],
                "report_gain": delivered["report"],
            }
        withdraw_gas = orgs[1].withdraw().gas_used
        block_gas_limit = chain.w3.eth.get_block("latest")["gasLimit"]

    result = {
        "benchmark": "gas",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "compiler": "solc 0.8.37, via-IR, optimizer 200 runs, evm cancun",
        "block_gas_limit": block_gas_limit,
        "register": statistics.median(register_gas[1:]),
        "register_first": register_gas[0],
        "update_profile": update_gas,
        "withdraw": withdraw_gas,
        "by_pairs": {str(key): value for key, value in per_pairs.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gas.json").write_text(json.dumps(result, indent=2) + "\n")
    _print(console, result)
    _plot(per_pairs)
    return result


def _print(console: Console, result: dict[str, Any]) -> None:
    console.print(
        f"register {result['register']:,} gas, updateProfile {result['update_profile']:,}, "
        f"withdraw {result['withdraw']:,} (block gas limit {result['block_gas_limit']:,})"
    )
    table = Table(
        "pairs", "openRound", "per pair", "publish", "report", "finalize (all ok)", "finalize (no-shows)"
    )
    for pairs, row in result["by_pairs"].items():
        table.add_row(
            pairs,
            f"{row['open_round']:,}",
            f"{row['open_round_per_pair']:,}",
            f"{row['publish_bundle']:,.0f}",
            f"{row['report_gain']:,.0f}",
            f"{row['finalize_all_delivered']:,}",
            f"{row['finalize_none_delivered']:,}",
        )
    console.print(table)


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
        ("finalize_all_delivered", "finalizeRound (all delivered)"),
        ("finalize_none_delivered", "finalizeRound (all no-shows)"),
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
