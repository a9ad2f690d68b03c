"""Finished marketplace rounds on a real Anvil, driven by the real matchmaker, with a real `LocalStore`.

Three organizations register with `ProfileDoc`s; `matchmaker.service.Matchmaker` decides each round
with LinUCB, stores its `DecisionRecord` and opens the round; every teacher publishes a bundle; all
students but the last report gains (the last stays silent and is slashed); the matchmaker finalizes.
With `tampered=True` the matchmaker alters one score in its decision record before storing it, so
an honest replay must answer `mismatch`. With `disputed=True` the silent student of round 1 disputes
its bundle instead (the bundles are not sealed envelopes, so the evidence proves the defect) and the
matchmaker rules it defective.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from coincurve import PrivateKey
from multiformats import CID

from chain.devchain import DevChain
from chain.units import ether, to_wad
from exchange.local import LocalStore
from market.disputes import pair_facts, prepare_evidence
from market.documents import PeftSummary, ProfileDoc
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker, RoundPlan

NAMES = ("acme-code", "bitforge", "codewell")
GAINS = (0.125, 0.0625, -0.03125)


@dataclass(frozen=True)
class Scenario:
    addresses: list[str]
    rounds: int
    pairs: dict[int, list[tuple[str, str]]]  # round -> (teacher, student) as assigned on chain
    profile_cids: list[str]
    store_dir: Path
    manifest: Path


def binary(cid: str) -> bytes:
    return bytes(CID.decode(cid))


def profile(index: int, categories: tuple[str, ...]) -> ProfileDoc:
    weights = [1.0 + ((index + position) % 3) for position in range(len(categories))]
    histogram = tuple(weight / sum(weights) for weight in weights)
    return ProfileDoc(
        model_family=("llama", "gpt2", "neox")[index],
        size_bucket="1",
        peft=PeftSummary(rank=8, target_modules=("q_proj", "v_proj")),
        pass_at_1=0.2 + index / 10,
        pass_at_1_delta=0.0,
        categories=categories,
        histogram=histogram,
        epsilon=1.0,
        budget_spent=1.0,
    )


def _tamper(plan: RoundPlan) -> None:
    """Play a dishonest matchmaker: publish a record whose first score is not the computed one."""
    first = plan.record.candidates[0]
    forged = dataclasses.replace(first, score=first.score + 1.0)
    plan.record = dataclasses.replace(plan.record, candidates=(forged, *plan.record.candidates[1:]))


def finished_rounds(
    chain: DevChain, directory: Path, *, rounds: int = 2, tampered: bool = False, disputed: bool = False
) -> Scenario:
    store = LocalStore(directory / "store")
    params = PolicyParams()
    orgs = [chain.organization(index) for index in range(3)]
    addresses = [str(org.account.address) for org in orgs if org.account is not None]
    profile_cids = []
    for index, (org, name) in enumerate(zip(orgs, NAMES, strict=True)):
        cid = store.put(profile(index, params.categories).to_bytes())
        profile_cids.append(cid)
        key = PrivateKey(bytes([index + 1]) * 32).public_key.format(compressed=True)
        org.register(name, binary(cid), key, ether(2))
    matchmaker = Matchmaker(
        chain.matchmaker(),
        store,
        params,
        seed=7,
        from_block=chain.deployment.deploy_block,
        round_blocks=12 if disputed else 6,
        plan_hook=_tamper if tampered else None,
    )
    assigned: dict[int, list[tuple[str, str]]] = {}
    for round_id in range(1, rounds + 1):
        result = matchmaker.step()
        if result.action != "opened" or result.round_id != round_id:
            raise RuntimeError(f"the matchmaker did not open round {round_id}: {result}")
        pairs = chain.client().pairs(round_id)
        assigned[round_id] = [(pair.teacher, pair.student) for pair in pairs]
        for index, pair in enumerate(pairs):
            teacher = orgs[addresses.index(pair.teacher)]
            teacher.publish_bundle(
                round_id, pair.student, binary(store.put(f"bundle {round_id}/{index}".encode()))
            )
        if disputed and round_id == 1:
            ledger = matchmaker.sync()[0]
            record = ledger.rounds[1]
            last = record.pairs[-1]
            facts = pair_facts(ledger, record, last)
            secret = bytes([addresses.index(last.student) + 1]) * 32
            evidence, _ = prepare_evidence(facts, store.get(facts.bundle_cid), secret)
            orgs[addresses.index(last.student)].dispute_bundle(
                1, last.teacher, binary(store.put(evidence.to_bytes()))
            )
        for index, pair in enumerate(pairs[:-1]):
            student = orgs[addresses.index(pair.student)]
            adapter = binary(store.put(f"adapter {round_id}/{index}".encode()))
            student.report_gain(round_id, pair.teacher, to_wad(GAINS[index] / round_id), adapter)
        if disputed and round_id == 1:
            chain.mine_until(chain.client().round(1).publish_deadline + 1)
            if matchmaker.step().action != "ruled":
                raise RuntimeError("the matchmaker did not rule on the dispute")
        chain.mine_until(chain.client().round(round_id).deadline_block + 1)
        finalized = matchmaker.step()
        if finalized.action != "finalized":
            raise RuntimeError(f"the matchmaker did not finalize round {round_id}: {finalized}")
    manifest = directory / "deployment.json"
    chain.deployment.save(manifest)
    return Scenario(addresses, rounds, assigned, profile_cids, directory / "store", manifest)
