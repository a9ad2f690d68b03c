"""A student is never crashed, nor made to punish an honest teacher, by someone else's fault: a bundle
the store has not delivered yet is waited for, one never delivered is reported neutrally, and a
learner failure is recorded instead of crash-looping (real Anvil; the bundles travel through a real
IPFS node)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from chain.units import from_wad
from exchange.cid import cid_binary, cid_of, cid_text
from exchange.ipfs import IpfsStore
from exchange.node import IpfsNode
from market.bundles import KnowledgeBundle
from market.sealing import seal_bundle
from matchmaker.service import Matchmaker
from org.fetching import DEFAULT_GIVE_UP_BLOCKS
from org.identity import unlock
from org.learners import LearnResult
from org.runtime import OrgRuntime
from sim.learner import SyntheticLearner
from tests.org.conftest import PASSWORD, CliMarket
from tests.org.test_org_cli import _register_all


@pytest.fixture
def bundle_store(ipfs_node: IpfsNode) -> Iterator[IpfsStore]:
    with IpfsStore(ipfs_node.api_url, timeout_s=1.0, has_timeout_s=0.5) as store:
        yield store


def _runtime(
    market: CliMarket, name: str, store: IpfsStore, learner: SyntheticLearner | None = None
) -> OrgRuntime:
    identity = unlock(market.homes[name], PASSWORD)
    return OrgRuntime(
        market.chain.client(identity.account),
        store,
        identity.encryption_key,
        learner or SyntheticLearner(name),
        identity.home,
        market.chain.deployment.deploy_block,
    )


def _sealed_but_not_stored(market: CliMarket, teacher: str, student: str, round_id: int) -> bytes:
    """The teacher's sealed bundle, published on chain by CID but not (yet) put into any store."""
    identity = unlock(market.homes[teacher], PASSWORD)
    reader = market.chain.client()
    recipient = reader.organization(student).encryption_public_key
    bundle = SyntheticLearner(teacher).teach(round_id, identity.address, student)
    sealed = seal_bundle(bundle, teacher_key=bytes(identity.account.key), recipient_public_key=recipient)
    market.chain.client(identity.account).publish_bundle(round_id, student, cid_binary(cid_of(sealed)))
    return sealed


def test_undelivered_bundles_are_waited_for_then_reported_neutrally(
    cli_market: CliMarket, bundle_store: IpfsStore
) -> None:
    addresses = _register_all(cli_market)
    names = {address: name for name, address in addresses.items()}
    matchmaker = cli_market.matchmaker()
    assert matchmaker.step().action == "opened"
    reader = cli_market.chain.client()
    late, never, normal = reader.pairs(1)
    late_bytes = _sealed_but_not_stored(cli_market, names[late.teacher], late.student, 1)
    _sealed_but_not_stored(cli_market, names[never.teacher], never.student, 1)

    # Not delivered yet (still propagating): the student waits and reports nothing.
    late_student = _runtime(cli_market, names[late.student], bundle_store)
    assert "waiting" in [a.kind for a in late_student.step() if a.round_id == 1]
    assert not next(p for p in reader.pairs(1) if p.student == late.student).gain_reported
    # It arrives: the student learns and reports a real gain.
    assert bundle_store.put(late_bytes) == cid_of(late_bytes)
    assert "reported" in [a.kind for a in late_student.step()]

    # Never delivered: once the deadline is near, a neutral 0 with a public note, not a -1.
    never_student = _runtime(cli_market, names[never.student], bundle_store)
    assert "waiting" in [a.kind for a in never_student.step()]
    deadline = reader.round(1).report_deadline
    cli_market.chain.mine_until(deadline - DEFAULT_GIVE_UP_BLOCKS)
    actions = never_student.step()
    assert [a.kind for a in actions if a.round_id == 1] == ["unavailable"]
    assert next(p for p in reader.pairs(1) if p.student == never.student).gain_reported
    assert _gain(matchmaker, never.student) == 0.0

    # The third pair plays normally; at settlement nobody is slashed.
    for name in (names[normal.teacher], names[normal.student]):
        for _ in range(2):
            _runtime(cli_market, name, bundle_store).step()
    cli_market.chain.mine_until(deadline + 1)
    assert matchmaker.step().action == "finalized"
    ledger, _ = matchmaker.sync()
    assert ledger.rounds[1].slashes == []
    assert all(pair.evidence_cid is None for pair in ledger.rounds[1].pairs)  # an outage is never disputed
    note = ledger.rounds[1].pairs[never.index].adapter_cid
    assert json.loads(bundle_store.get(cid_text(note or b"")))["kind"] == "knexa.unavailable"


def _gain(matchmaker: Matchmaker, student: str) -> float | None:
    """The gain `student` reported in round 1, as the chain's events say (v2 keeps gains in events)."""
    ledger, _ = matchmaker.sync()
    gain = next(p for p in ledger.rounds[1].pairs if p.student == student).gain
    return None if gain is None else from_wad(gain)


class _BrokenLearner(SyntheticLearner):
    """A learner whose distillation fails with an untyped error (as a torch index error would)."""

    def learn(self, bundle: KnowledgeBundle, teacher_name: str) -> LearnResult:
        raise IndexError("index 70000 is out of bounds for dimension 0 with size 512")


def test_a_learner_failure_is_recorded_never_a_crash(cli_market: CliMarket, bundle_store: IpfsStore) -> None:
    addresses = _register_all(cli_market)
    names = {address: name for name, address in addresses.items()}
    assert cli_market.matchmaker().step().action == "opened"
    pair = cli_market.chain.client().pairs(1)[0]
    _runtime(cli_market, names[pair.teacher], bundle_store).step()  # publishes (through IPFS)
    student = _runtime(cli_market, names[pair.student], bundle_store, _BrokenLearner(names[pair.student]))
    actions = student.step()  # on the unfixed code: IndexError out of step(), the agent exits
    assert [a.kind for a in actions if a.kind != "published"] == ["learner-failure"]
    assert _gain(cli_market.matchmaker(), pair.student) == 0.0  # not evidence against the teacher
    again = _runtime(cli_market, names[pair.student], bundle_store, _BrokenLearner(names[pair.student]))
    assert [a.kind for a in again.step() if a.kind != "published"] == []  # a restart: no retry, no crash
