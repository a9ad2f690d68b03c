"""Disputes end to end on a real Anvil chain with a local store: organizations run through `knexa org`,
the matchmaker rules as arbiter, and an independent replay re-judges every verdict.

- an honest student with a defective bundle disputes and wins: the teacher is slashed, fee and bond
  come back;
- a student disputing a good bundle loses its bond, whatever its evidence says (a truthful
  disclosure that shows a correct bundle, a wrong key, another pair's evidence, garbage); the
  teacher loses nothing;
- a verdict that disagrees with the evidence is flagged by replay at that dispute.
"""

from __future__ import annotations

import dataclasses
import json

from chain.client import Outcome
from exchange.cid import cid_binary, cid_text
from exchange.disclosure import disclose
from exchange.ipfs import IpfsStore
from exchange.node import IpfsNode
from exchange.sealing import read_header, seal
from market.bundles import KnowledgeBundle
from market.disputes import DisputeVerdict, fetch_and_judge, pair_facts, prepare_evidence
from market.ledger import Ledger, LedgerPair
from market.sealing import publish_sealed
from matchmaker.audit import MATCH, MISMATCH, verify_rounds
from org.errors import LearnerRefusedError
from org.identity import unlock
from org.learners import LearnResult
from org.runtime import OrgRuntime
from sim.learner import SyntheticLearner
from tests.org.conftest import PASSWORD, CliMarket, matchmaker_for
from tests.org.test_org_cli import _play, _register_all


def _settled(market: CliMarket) -> dict[int, dict[str, object]]:
    events = market.chain.events().read(market.chain.deployment.deploy_block, names=["PairSettled"])
    return {int(event.args["pairIndex"]): dict(event.args) for event in events}


def _open_round(market: CliMarket) -> tuple[dict[str, str], Ledger]:
    addresses = _register_all(market)
    matchmaker = market.matchmaker()
    assert matchmaker.step().action == "opened"
    return addresses, matchmaker.sync()[0]


def _name_of(addresses: dict[str, str], address: str) -> str:
    return next(name for name, value in addresses.items() if value == address)


def _publish(
    market: CliMarket, addresses: dict[str, str], ledger: Ledger, index: int, *, to_self: bool
) -> None:
    """Publish pair `index`'s bundle as its teacher: sealed to the student, or (`to_self`) to the
    teacher's own key, so that the student cannot open it."""
    pair = ledger.rounds[1].pairs[index]
    teacher = unlock(market.homes[_name_of(addresses, pair.teacher)], PASSWORD)
    recipient = ledger.organizations[pair.student].encryption_public_key
    cid = publish_sealed(
        market.store,
        SyntheticLearner(teacher.config.name).teach(1, teacher.address, pair.student),
        teacher_key=bytes(teacher.account.key),
        recipient_public_key=teacher.encryption_public_key if to_self else recipient,
    )
    market.chain.client(teacher.account).publish_bundle(1, pair.student, cid_binary(cid))


def _verdicts(market: CliMarket) -> list[object]:
    return list(verify_rounds(market.chain.client(), market.store, market.chain.deployment.deploy_block))


def test_an_honest_student_wins_the_dispute_over_a_defective_bundle(cli_market: CliMarket) -> None:
    addresses, ledger = _open_round(cli_market)
    reader = cli_market.chain.client()
    cheat = ledger.rounds[1].pairs[0]
    stakes = {address: reader.organization(address).stake for address in addresses.values()}
    owed = {address: reader.pending_withdrawal(address) for address in addresses.values()}
    _publish(cli_market, addresses, ledger, cheat.index, to_self=True)  # the student cannot open it

    actions = _play(cli_market, list(cli_market.homes))
    disputed = [a for a in actions if a["action"] == "disputed"]
    assert len(disputed) == 1
    assert "recipient" in str(disputed[0]["detail"])
    assert sorted(str(a["action"]) for a in actions) == [
        "disputed",
        "published",
        "published",
        "reported",
        "reported",
    ]

    matchmaker = cli_market.matchmaker()
    round_1 = matchmaker.sync()[0].rounds[1]
    assert matchmaker.step().action == "waiting"  # no verdict before the publish deadline
    cli_market.chain.mine_until(round_1.publish_deadline + 1)
    ruled = matchmaker.step()
    assert ruled.action == "ruled"
    assert "defective" in ruled.detail
    cli_market.chain.mine_until(round_1.deadline_block + 1)
    assert matchmaker.step().action == "finalized"

    settled = _settled(cli_market)[cheat.index]
    assert settled["outcome"] == Outcome.DEFECTIVE
    slashed = int(settled["slashed"])  # type: ignore[call-overload]
    params = reader.parameters()
    teacher_stake = reader.organization(cheat.teacher).stake
    assert slashed == (teacher_stake + slashed) * params.slash_bps // 10_000
    # (the teacher is also a student in this round: its own fee went to its teacher)
    assert teacher_stake == stakes[cheat.teacher] - params.exchange_fee - slashed
    assert reader.organization(cheat.student).stake == stakes[cheat.student]  # fee and bond came back
    assert reader.pending_withdrawal(cheat.student) >= owed[cheat.student] + slashed
    verdict_cid = cid_text(bytes(settled["verdictCid"]))  # type: ignore[call-overload]
    verdict = DisputeVerdict.from_bytes(cli_market.store.get(verdict_cid))
    assert verdict.defective
    assert [(c.check, c.passed) for c in verdict.checks][-1] == ("recipient", False)

    (replayed,) = _verdicts(cli_market)
    assert replayed.verdict == MATCH  # type: ignore[attr-defined]
    (audit,) = replayed.disputes  # type: ignore[attr-defined]
    assert (audit.verdict, audit.outcome, audit.recomputed_defective) == (MATCH, "defective", True)


def test_disputing_a_good_bundle_costs_the_bond_whatever_the_evidence(cli_market: CliMarket) -> None:
    addresses, ledger = _open_round(cli_market)
    reader = cli_market.chain.client()
    names = list(cli_market.homes)
    for index in range(len(ledger.rounds[1].pairs)):
        _publish(cli_market, addresses, ledger, index, to_self=False)  # every teacher is honest
    ledger = cli_market.matchmaker().sync()[0]
    round_1 = ledger.rounds[1]
    stakes = {address: reader.organization(address).stake for address in addresses.values()}
    owed = {address: reader.pending_withdrawal(address) for address in addresses.values()}
    reputations = {address: reader.organization(address).reputation for address in addresses.values()}
    params = reader.parameters()

    def crafted(index: int) -> bytes:
        """Evidence each lying student writes for its (good) bundle."""
        pair = round_1.pairs[index]
        student = unlock(cli_market.homes[_name_of(addresses, pair.student)], PASSWORD)
        facts = pair_facts(ledger, round_1, pair)
        envelope = cli_market.store.get(facts.bundle_cid)
        truthful, verdict = prepare_evidence(facts, envelope, student.encryption_key.secret)
        assert not verdict.defective  # the student's own judge already says it would lose
        if index == 0:  # a true disclosure, a false claim: the disclosed key opens a correct bundle
            return truthful.to_bytes()
        if index == 1:  # "it does not decrypt", with a point of another key
            header, _ = read_header(envelope)
            return dataclasses.replace(
                truthful, claim="decrypt", disclosure=disclose(b"\x44" * 32, header.ephemeral)
            ).to_bytes()
        other = prepare_evidence(pair_facts(ledger, round_1, round_1.pairs[0]), None, b"\x44" * 32)[0]
        return other.to_bytes()  # evidence about another pair (and a bundle it never saw)

    for pair in round_1.pairs:
        student = unlock(cli_market.homes[_name_of(addresses, pair.student)], PASSWORD)
        evidence_cid = cli_market.store.put(crafted(pair.index))
        cli_market.chain.client(student.account).dispute_bundle(1, pair.teacher, cid_binary(evidence_cid))

    matchmaker = cli_market.matchmaker()
    cli_market.chain.mine_until(round_1.publish_deadline + 1)
    ruled = matchmaker.step()
    assert ruled.action == "ruled"
    assert ruled.detail.count("unfounded") == 3
    assert all(cli_market.join_once(name) == [] for name in names)  # nothing left to do
    cli_market.chain.mine_until(round_1.verdict_deadline + 1)
    assert matchmaker.step().action == "finalized"

    settled = _settled(cli_market)
    assert {int(s["outcome"]) for s in settled.values()} == {Outcome.UNFOUNDED}  # type: ignore[call-overload]
    checks = {}
    for index, entry in settled.items():
        verdict = DisputeVerdict.from_bytes(cli_market.store.get(cid_text(bytes(entry["verdictCid"]))))  # type: ignore[call-overload]
        checks[index] = verdict.checks[-1]
    assert checks[0].check == "content"
    assert checks[0].passed  # every check passed: the bundle is good
    assert (checks[1].check, checks[1].passed) == ("key", False)
    assert "EvidenceKeyError" in checks[1].detail
    assert (checks[2].check, checks[2].passed) == ("evidence", False)
    assert "EvidenceMismatchError" in checks[2].detail
    for address in addresses.values():  # everyone is teacher once and student once
        # (the fee was escrowed at the publish, before `stakes`): the bond is lost, the fee paid
        assert reader.organization(address).stake == stakes[address] - params.dispute_bond
        assert reader.pending_withdrawal(address) == owed[address] + params.exchange_fee + params.dispute_bond
    for pair in round_1.pairs:  # a false dispute never lowers the teacher's reputation
        assert reader.organization(pair.teacher).reputation >= reputations[pair.teacher]

    (replayed,) = _verdicts(cli_market)
    assert replayed.verdict == MATCH  # type: ignore[attr-defined]
    assert [a.outcome for a in replayed.disputes] == ["unfounded"] * 3  # type: ignore[attr-defined]


def test_replay_flags_a_verdict_that_disagrees_with_the_evidence(cli_market: CliMarket) -> None:
    addresses, ledger = _open_round(cli_market)
    names = list(cli_market.homes)
    for index in range(len(ledger.rounds[1].pairs)):
        _publish(cli_market, addresses, ledger, index, to_self=False)
    ledger = cli_market.matchmaker().sync()[0]
    round_1 = ledger.rounds[1]
    victim, doctored = round_1.pairs[1], round_1.pairs[2]
    for pair in (victim, doctored):  # both students dispute good bundles (with truthful evidence)
        student = unlock(cli_market.homes[_name_of(addresses, pair.student)], PASSWORD)
        facts = pair_facts(ledger, round_1, pair)
        envelope = cli_market.store.get(facts.bundle_cid)
        evidence, _ = prepare_evidence(facts, envelope, student.encryption_key.secret)
        evidence_cid = cli_market.store.put(evidence.to_bytes())
        cli_market.chain.client(student.account).dispute_bundle(1, pair.teacher, cid_binary(evidence_cid))
    cli_market.chain.mine_until(round_1.publish_deadline + 1)
    ledger = cli_market.matchmaker().sync()[0]
    arbiter = cli_market.chain.matchmaker()

    def honest_verdict(pair: LedgerPair) -> DisputeVerdict:
        on_chain = ledger.rounds[1].pairs[pair.index]
        assert on_chain.evidence_cid is not None
        return fetch_and_judge(
            cli_market.store, pair_facts(ledger, ledger.rounds[1], on_chain), on_chain.evidence_cid
        )

    # A dishonest arbiter rules one good bundle defective, with a document that says so...
    honest = honest_verdict(victim)
    assert not honest.defective
    forged = dataclasses.replace(honest, defective=True, reason="the arbiter says so")
    arbiter.resolve_dispute(
        1, victim.teacher, victim.student, True, cid_binary(cli_market.store.put(forged.to_bytes()))
    )
    # ...and rules the other one correctly, but names a document that misstates a check.
    honest = honest_verdict(doctored)
    checks = (*honest.checks[:-1], dataclasses.replace(honest.checks[-1], detail="looked fine to me"))
    misstated = dataclasses.replace(honest, checks=checks)
    arbiter.resolve_dispute(
        1, doctored.teacher, doctored.student, False, cid_binary(cli_market.store.put(misstated.to_bytes()))
    )
    for name in names:
        cli_market.join_once(name)  # the other student reports
    cli_market.chain.mine_until(round_1.deadline_block + 1)
    assert cli_market.matchmaker().step().action == "finalized"

    (replayed,) = _verdicts(cli_market)
    assert replayed.verdict == MISMATCH  # type: ignore[attr-defined]
    assert replayed.first_difference == f"disputes[{victim.index}].defective"  # type: ignore[attr-defined]
    assert "no proven defect" in replayed.detail  # type: ignore[attr-defined]
    audits = {audit.pair_index: audit for audit in replayed.disputes}  # type: ignore[attr-defined]
    assert (audits[victim.index].verdict, audits[victim.index].outcome) == (MISMATCH, "defective")
    last = len(checks) - 1
    assert audits[doctored.index].verdict == MISMATCH
    assert (
        audits[doctored.index].first_difference == f"disputes[{doctored.index}].verdict.checks[{last}].detail"
    )


class _RefusingLearner(SyntheticLearner):
    def learn(self, bundle: KnowledgeBundle, teacher_name: str) -> LearnResult:
        raise LearnerRefusedError("the bundle names prompts outside the transfer set")


def test_a_refusal_the_arbiter_cannot_check_is_a_bare_report_never_a_dispute(cli_market: CliMarket) -> None:
    addresses, ledger = _open_round(cli_market)
    for index in range(len(ledger.rounds[1].pairs)):
        _publish(cli_market, addresses, ledger, index, to_self=False)
    pair = ledger.rounds[1].pairs[0]
    name = _name_of(addresses, pair.student)
    identity = unlock(cli_market.homes[name], PASSWORD)
    runtime = OrgRuntime(
        cli_market.chain.client(identity.account),
        cli_market.store,
        identity.encryption_key,
        _RefusingLearner(name),
        identity.home,
        cli_market.chain.deployment.deploy_block,
    )
    (action,) = runtime.step()
    assert action.kind == "rejected"
    reader = cli_market.chain.client()
    assert reader.reported_gain(1, pair.student) == -(10**18)
    note = cli_market.matchmaker().sync()[0].rounds[1].pairs[0].adapter_cid
    assert json.loads(cli_market.store.get(cid_text(note or b"")))["kind"] == "knexa.rejection"
    assert cli_market.matchmaker().sync()[0].rounds[1].pairs[0].evidence_cid is None


def test_a_dispute_over_ipfs(cli_market: CliMarket, ipfs_node: IpfsNode) -> None:
    """Bundle, evidence and verdict travel through a real IPFS node; the arbiter reads only from it."""
    addresses, ledger = _open_round(cli_market)
    with IpfsStore(ipfs_node.api_url, timeout_s=5.0) as ipfs:
        cheat = ledger.rounds[1].pairs[2]
        teacher = unlock(cli_market.homes[_name_of(addresses, cheat.teacher)], PASSWORD)
        sealed = seal(  # signed and sealed correctly, but the payload is no knowledge bundle
            b"not a knowledge bundle",
            kind="knowledge",
            round=1,
            teacher_key=bytes(teacher.account.key),
            student=cheat.student,
            recipient_public_key=ledger.organizations[cheat.student].encryption_public_key,
        )
        cid = ipfs.put(sealed)
        cli_market.chain.client(teacher.account).publish_bundle(1, cheat.student, cid_binary(cid))
        student = unlock(cli_market.homes[_name_of(addresses, cheat.student)], PASSWORD)
        runtime = OrgRuntime(
            cli_market.chain.client(student.account),
            ipfs,
            student.encryption_key,
            SyntheticLearner(student.config.name),
            student.home,
            cli_market.chain.deployment.deploy_block,
        )
        disputed = [a for a in runtime.step() if a.kind == "disputed"]
        assert len(disputed) == 1
        assert "content" in disputed[0].detail
        arbiter = matchmaker_for(cli_market.chain, ipfs, seed=5)
        round_1 = arbiter.sync()[0].rounds[1]
        cli_market.chain.mine_until(round_1.publish_deadline + 1)
        assert arbiter.step().action == "ruled"
        ledger = arbiter.sync()[0]
        pair = ledger.rounds[1].pairs[cheat.index]
        assert pair.outcome is Outcome.DEFECTIVE
        assert pair.evidence_cid is not None
        assert pair.verdict_cid is not None
        again = fetch_and_judge(ipfs, pair_facts(ledger, ledger.rounds[1], pair), pair.evidence_cid)
        assert again.to_bytes() == ipfs.get(cid_text(pair.verdict_cid))  # anyone redoes it from IPFS
