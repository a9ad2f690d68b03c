"""The live matchmaker on a real chain, its bit-exact replay, and the replay catching deviations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chain.devchain import DevChain
from exchange.cid import cid_text
from exchange.local import LocalStore
from matchmaker.audit import MATCH, MISMATCH, UNVERIFIABLE, RoundVerdict, verify_rounds
from matchmaker.errors import ConfigurationError, MatchmakerError
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker, MatchmakerHalted, RoundPlan
from tests.rounds.conftest import Federation


def _verify(federation: Federation) -> list[RoundVerdict]:
    return verify_rounds(
        federation.chain.client(), federation.store, federation.chain.deployment.deploy_block
    )


def _run_rounds(federation: Federation, matchmaker: Matchmaker, rounds: int) -> None:
    for _ in range(rounds):
        opened = matchmaker.step()
        assert opened.action == "opened", opened
        federation.play_open_round()
        finalized = matchmaker.step()
        assert finalized.action == "finalized", finalized


def test_rounds_replay_bit_for_bit_and_restart_resumes(federation: Federation) -> None:
    matchmaker = federation.matchmaker()
    _run_rounds(federation, matchmaker, 3)
    reader = federation.chain.client()
    verdicts = verify_rounds(reader, federation.store, federation.chain.deployment.deploy_block)
    assert [(v.round_id, v.verdict) for v in verdicts] == [(1, MATCH), (2, MATCH), (3, MATCH)]

    # The bandit learnt from three rounds of reports; a fresh process rebuilds the same state.
    matchmaker.sync()
    matchmaker.verdicts()
    assert matchmaker.replayer.runner is not None
    assert matchmaker.replayer.runner.observed_rounds == 3
    state = matchmaker.replayer.runner.policy.state_digest()
    restarted = federation.matchmaker()
    restarted.sync()
    restarted.verdicts()
    assert restarted.replayer.runner is not None
    assert restarted.replayer.runner.policy.state_digest() == state
    assert restarted.replayer.runner.observed_rounds == 3
    assert restarted.step().action == "opened"


def test_missing_reports_are_skipped_not_zero(federation: Federation) -> None:
    matchmaker = federation.matchmaker()
    matchmaker.step()
    silent = frozenset(list(federation.orgs)[:2])
    federation.play_open_round(silent_students=silent)
    matchmaker.step()
    matchmaker.step()  # opens round 2, whose record lists the rewards consumed
    record_cid = cid_text(matchmaker.sync()[0].rounds[2].decision_cid)
    from market.documents import DecisionRecord

    record = DecisionRecord.from_bytes(federation.store.get(record_cid))
    students_rewarded = {reward.student for reward in record.rewards}
    assert students_rewarded
    assert not students_rewarded & silent


def test_a_deviating_round_is_flagged_exactly(federation: Federation) -> None:
    def swap_in_round_two(plan: RoundPlan) -> None:
        if plan.round_id == 2:
            (t0, s0), (t1, s1) = plan.pairs[0], plan.pairs[1]
            plan.pairs[0], plan.pairs[1] = (t0, s1), (t1, s0)  # still a valid matching, not the policy's

    matchmaker = federation.matchmaker(plan_hook=swap_in_round_two)
    matchmaker.step()
    federation.play_open_round()
    matchmaker.step()
    matchmaker.step()  # round 2, deviating
    federation.play_open_round()
    matchmaker.step()
    # The deviating matchmaker's own replay refuses to continue...
    with pytest.raises(MatchmakerHalted, match="round 2"):
        matchmaker.step()
    # ...and an honest successor, told to accept the flagged history, runs round 3 on it.
    successor = federation.matchmaker(accept_mismatches=True)
    assert successor.step().action == "opened"
    federation.play_open_round()
    assert successor.step().action == "finalized"

    verdicts = verify_rounds(
        federation.chain.client(), federation.store, federation.chain.deployment.deploy_block
    )
    assert [v.verdict for v in verdicts] == [MATCH, MISMATCH, MATCH]
    assert verdicts[1].first_difference == "pairs_root"


def test_a_doctored_record_is_flagged_at_its_first_wrong_field(federation: Federation) -> None:
    def inflate_a_score(plan: RoundPlan) -> None:
        first = plan.record.candidates[0]
        doctored = dataclasses.replace(first, score=first.score + 1.0)
        plan.record = dataclasses.replace(plan.record, candidates=(doctored, *plan.record.candidates[1:]))

    matchmaker = federation.matchmaker(plan_hook=inflate_a_score)
    matchmaker.step()
    verdicts = verify_rounds(
        federation.chain.client(), federation.store, federation.chain.deployment.deploy_block
    )
    assert [(v.verdict, v.first_difference) for v in verdicts] == [(MISMATCH, "candidates[0].score")]


def test_an_undeclared_policy_change_halts_the_matchmaker(federation: Federation) -> None:
    _run_rounds(federation, federation.matchmaker(), 1)
    changed = federation.matchmaker(params=PolicyParams(beta0=2.0))
    with pytest.raises(MatchmakerHalted, match="round 1"):
        changed.step()


def test_a_missing_record_makes_history_unverifiable(federation: Federation) -> None:
    matchmaker = federation.matchmaker()
    _run_rounds(federation, matchmaker, 2)
    record_cid = cid_text(matchmaker.sync()[0].rounds[1].decision_cid)
    federation.store.unpin(record_cid)
    (federation.store.root / "objects" / record_cid[-2:] / record_cid).unlink()
    verdicts = verify_rounds(
        federation.chain.client(), federation.store, federation.chain.deployment.deploy_block
    )
    assert [v.verdict for v in verdicts] == [UNVERIFIABLE, UNVERIFIABLE]
    assert "decision record of round 1" in verdicts[0].detail


def test_too_few_organizations_means_idle(dev_chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from exchange.local import LocalStore

    matchmaker = Matchmaker(dev_chain.matchmaker(), LocalStore(tmp_path), PolicyParams(), from_block=0)
    result = matchmaker.step()
    assert result.action == "idle"
    assert dev_chain.client().next_round_id() == 1


def test_a_matchmaker_without_an_account_is_a_typed_configuration_error(
    dev_chain: DevChain, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="MATCHMAKER_ROLE") as caught:
        Matchmaker(dev_chain.client(), LocalStore(tmp_path), PolicyParams())
    assert isinstance(caught.value, MatchmakerError)
