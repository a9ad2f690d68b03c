"""One organization's bad profile never halts the market: it is left out of that round, named in the
decision record with the reason, and the replay reproduces the exclusion (real Anvil; real IPFS
where the case is about the store)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest

from chain.devchain import DevChain
from chain.units import ether
from exchange.canonical import dumps_canonical
from exchange.cid import cid_binary, cid_of, cid_text
from exchange.ipfs import IpfsStore
from exchange.node import IpfsNode
from exchange.store import ContentStore
from market.documents import DecisionRecord
from market.parameters import DEFAULT_PARAMETERS
from matchmaker.audit import MATCH, MISMATCH, verify_rounds
from matchmaker.inputs import MAX_PROFILE_BYTES
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker, RoundPlan
from tests.chain.helpers import account_of, public_key
from tests.rounds.conftest import Federation, profile


def _record(matchmaker: Matchmaker, store: ContentStore, round_id: int) -> DecisionRecord:
    ledger, _ = matchmaker.sync()
    return DecisionRecord.from_bytes(store.get(cid_text(ledger.rounds[round_id].decision_cid)))


def _absurd(index: int, **validation: float) -> bytes:
    """A profile that only a hand-written JSON encoder produces: canonical, but out of bounds."""
    value = profile(index, 4).to_json()
    if validation:
        value["validation"] = {"pass_at_1": 0.5, "delta": 0.0, **validation}
    else:
        categories = value["categories"]
        assert isinstance(categories, dict)
        value["categories"] = {**categories, "histogram": [1e308] * 8}
    return dumps_canonical(value)


def test_absurd_profiles_exclude_only_their_organizations(federation: Federation) -> None:
    addresses = list(federation.orgs)
    huge, wild = addresses[0], addresses[1]
    federation.orgs[huge].update_profile(cid_binary(federation.store.put(_absurd(0))))
    federation.orgs[wild].update_profile(cid_binary(federation.store.put(_absurd(1, pass_at_1=7.5))))
    matchmaker = federation.matchmaker()

    opened = matchmaker.step()  # on the unfixed code: OverflowError out of math.fsum
    assert opened.action == "opened", opened
    record = _record(matchmaker, federation.store, 1)
    assert set(record.orgs) == set(addresses[2:])
    assert set(record.excluded) == {huge, wild}
    assert record.excluded[huge].startswith("invalid: OutOfBoundsError")
    assert "histogram" in record.excluded[huge]
    assert "pass_at_1" in record.excluded[wild]
    assert all({pair.teacher, pair.student} <= set(addresses[2:]) for pair in record.chosen)
    verdicts = verify_rounds(
        federation.chain.client(), federation.store, federation.chain.deployment.deploy_block
    )
    assert [v.verdict for v in verdicts] == [MATCH]


def test_a_lying_exclusion_is_a_mismatch(federation: Federation) -> None:
    """The replay recomputes content-based exclusions: a record that misstates why an
    organization was left out does not replay, and the first difference says where."""
    addresses = list(federation.orgs)

    def misstate_the_reason(plan: RoundPlan) -> None:
        plan.record = dataclasses.replace(plan.record, excluded={addresses[0]: "oversized"})

    federation.orgs[addresses[0]].update_profile(cid_binary(federation.store.put(_absurd(0))))
    matchmaker = federation.matchmaker(plan_hook=misstate_the_reason)
    assert matchmaker.step().action == "opened"
    verdicts = verify_rounds(
        federation.chain.client(), federation.store, federation.chain.deployment.deploy_block
    )
    assert [(v.verdict, v.first_difference) for v in verdicts] == [(MISMATCH, "inputs.excluded[0].reason")]


def test_pairs_stay_within_the_contract_limit(dev_chain: DevChain, federation: Federation) -> None:
    """Four eligible organizations, `maxPairsPerRound` 2: the best two pairs, not `TooManyPairs`."""
    dev_chain.admin().set_parameters(dataclasses.replace(DEFAULT_PARAMETERS, max_pairs_per_round=2))
    uncapped = federation.matchmaker()
    matchmaker = federation.matchmaker()
    opened = matchmaker.step()
    assert opened.action == "opened", opened
    assert len(dev_chain.client().pairs(1)) == 2
    record = _record(matchmaker, federation.store, 1)
    scores = {(c.teacher, c.student): c.score for c in record.candidates}
    # what the policy would have chosen without the limit, best-scored first
    ledger, _ = uncapped.sync()
    full = uncapped.replayer.runner
    assert full is not None
    from matchmaker.runner import gather_inputs

    inputs = gather_inputs(2, ledger, uncapped._profiles.fetch(ledger), full.params)
    decision, _ = full.decide(dataclasses.replace(inputs, max_pairs=None))
    assert len(decision.pairs) > 2
    best = sorted(decision.pairs, key=lambda pair: -scores[pair])[:2]
    assert sorted((p.teacher, p.student) for p in record.chosen) == sorted(best)
    federation.play_open_round()
    assert matchmaker.step().action == "finalized"
    verdicts = verify_rounds(dev_chain.client(), federation.store, dev_chain.deployment.deploy_block)
    assert [v.verdict for v in verdicts] == [MATCH]


@pytest.fixture
def quick_ipfs(ipfs_node: IpfsNode) -> Iterator[IpfsStore]:
    with IpfsStore(ipfs_node.api_url, timeout_s=2.0, has_timeout_s=0.5) as store:
        yield store


def test_unavailable_or_oversized_profiles_on_ipfs(dev_chain: DevChain, quick_ipfs: IpfsStore) -> None:
    """A CID nobody serves and a 1 MiB + 1 profile leave those two out of round 1 only; once the
    missing profile is served, its organization is back in round 2."""
    docs = [profile(index, 4) for index in range(4)]
    missing_bytes = docs[2].to_bytes()
    profiles = [
        quick_ipfs.put(docs[0].to_bytes()),
        quick_ipfs.put(docs[1].to_bytes()),
        cid_of(missing_bytes),  # registered, but nobody serves it (yet)
        quick_ipfs.put(os.urandom(MAX_PROFILE_BYTES + 1)),
    ]
    orgs = []
    for index, cid in enumerate(profiles):
        client = dev_chain.organization(index)
        client.register(f"org-{index}", cid_binary(cid), public_key(index + 1), ether(2))
        orgs.append(account_of(client).address)
    matchmaker = Matchmaker(
        dev_chain.matchmaker(),
        quick_ipfs,
        PolicyParams(),
        seed=3,
        from_block=dev_chain.deployment.deploy_block,
    )
    opened = matchmaker.step()
    assert opened.action == "opened", opened  # on the unfixed code: idle, waiting for the store forever
    record = _record(matchmaker, quick_ipfs, 1)
    assert set(record.orgs) == {orgs[0], orgs[1]}
    assert record.excluded[orgs[2]].startswith("unavailable: NotFoundError")
    assert record.excluded[orgs[3]] == "oversized"
    # the replay takes "unavailable" from the record and recomputes "oversized"
    assert [
        v.verdict for v in verify_rounds(dev_chain.client(), quick_ipfs, dev_chain.deployment.deploy_block)
    ] == [MATCH]

    dev_chain.mine_until(dev_chain.client().round(1).deadline_block + 1)
    assert matchmaker.step().action == "finalized"
    assert quick_ipfs.put(missing_bytes) == profiles[2]
    assert matchmaker.step().action == "opened"
    record = _record(matchmaker, quick_ipfs, 2)
    assert set(record.orgs) == {orgs[0], orgs[1], orgs[2]}
    assert set(record.excluded) == {orgs[3]}
    verdicts = verify_rounds(dev_chain.client(), quick_ipfs, dev_chain.deployment.deploy_block)
    assert [v.verdict for v in verdicts] == [MATCH, MATCH]
