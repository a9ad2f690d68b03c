"""A scripted marketplace round on a throw-away Anvil chain, through the Python clients.

Three organizations register; the matchmaker opens a round with the ring A -> B -> C -> A; every
teacher publishes a bundle; B and C report the gains they measured while A (the student of C)
stays silent and is slashed; after the deadline the round is finalized, everyone withdraws what they
earned, and the decoded events are printed. Content is identified by real CIDv1 (raw, sha2-256)
of small JSON documents; the IPFS side is exercised by the exchange layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey
from multiformats import CID, multihash

from chain.devchain import DevChain
from chain.events import ChainEvent
from chain.units import ether, from_wad, to_wad


def content_cid(document: dict[str, Any]) -> bytes:
    """Binary CIDv1 (raw codec, sha2-256) of a canonical JSON document."""
    payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return bytes(CID("base32", 1, "raw", multihash.digest(payload, "sha2-256")))


@dataclass(frozen=True)
class DemoResult:
    market: str
    events: list[ChainEvent]
    organizations: list[dict[str, Any]]


def run_chain_demo() -> DemoResult:
    names = ["acme-code", "bitforge", "codewell"]
    gains = {0: 0.125, 1: 0.0625}  # the students of pairs 0 and 1 report; pair 2's student does not
    with DevChain() as chain:
        orgs = [chain.organization(index) for index in range(3)]
        addresses = [org.account.address for org in orgs if org.account is not None]
        for index, (org, name) in enumerate(zip(orgs, names, strict=True)):
            encryption_key = PrivateKey(bytes([index + 1]) * 32).public_key.format(compressed=True)
            profile = {"name": name, "family": ["llama", "gpt2", "neox"][index], "pass_at_1": 0.2}
            org.register(name, content_cid(profile), encryption_key, ether(2))

        matchmaker = chain.matchmaker()
        ring = [(addresses[0], addresses[1]), (addresses[1], addresses[2]), (addresses[2], addresses[0])]
        decision = {"round": 1, "policy": "scripted-ring", "pairs": ring}
        deadline = chain.w3.eth.block_number + 8
        matchmaker.open_round(1, content_cid(decision), bytes(32), ring, deadline)

        for index, (teacher, student) in enumerate(ring):
            bundle = {"round": 1, "teacher": teacher, "student": student, "topk": 8}
            orgs[index].publish_bundle(1, student, content_cid(bundle))
        for pair_index, gain in gains.items():
            teacher, student = ring[pair_index]
            student_client = orgs[addresses.index(student)]
            adapter = {"round": 1, "student": student, "adapter": "lora-r8"}
            student_client.report_gain(1, teacher, to_wad(gain), content_cid(adapter))

        chain.mine_until(deadline + 1)
        matchmaker.finalize_round(1)
        for org in orgs:
            if org.account is not None and org.pending_withdrawal(org.account.address) > 0:
                org.withdraw()

        events = chain.events().read(chain.deployment.deploy_block)
        summary = [
            {
                "name": state.name,
                "address": state.address,
                "stake_eth": from_wad(state.stake),
                "reputation": from_wad(state.reputation),
                "credits": from_wad(state.credits),
            }
            for state in (orgs[0].organization(address) for address in addresses)
        ]
        return DemoResult(market=chain.deployment.market_address, events=events, organizations=summary)
