"""One code path for deciding rounds, used by the live matchmaker and by every auditor's replay.

`PolicyRunner` turns public inputs (the ledger folded from chain events up to the decision's
`inputs_block`, and the profile documents those events point at) into a `Decision` and its
`DecisionRecord`, and learns from a finalized round's on-chain outcome. Because the matchmaker
itself runs exactly this code over exactly these inputs, a replay that recomputes a round and
finds any difference has caught a deviation, not a numerical accident.

Policy commitment: the `policyDigest` a round carries on chain is sha256 of the canonical JSON
`{"params": <PolicyParams>, "seed": <seed>, "schema": "knexa.policy-commitment.v1"}`, so the
seed of the `random` policy is committed too and cannot be re-rolled per round.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from chain.units import from_wad
from exchange.cid import cid_text
from market.documents import Candidate, DecisionPair, DecisionRecord, PolicyRecord, ProfileDoc, RewardInput
from market.ledger import Ledger, LedgerRound
from matchmaker.context import arm_index, build_contexts
from matchmaker.errors import InputError
from matchmaker.features import OrgFeatures
from matchmaker.inputs import INVALID, UNAVAILABLE, ProfileInputs, cap_pairs, reason
from matchmaker.policies import Decision, PolicyParams, make_policy, policy_commitment, rng_for_round

#: Decision records list every scored arm while there are at most this many (N <= 64); beyond,
#: only the chosen arms are recorded (the replay still recomputes and compares all of them).
MAX_RECORDED_ARMS = 64 * 63


def _size_bucket(text: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise InputError(f"size bucket {text!r} is not an integer bucket") from error


def features_from_profile(
    doc: ProfileDoc, params: PolicyParams, reputation: int, credits: int
) -> OrgFeatures:
    """A profile document joined with on-chain reputation and credits (WAD), as bandit features.

    The histogram is post-processed deterministically (negative DP noise clipped to 0, then
    normalised with an index-ordered sum), so every replay derives bit-identical features.
    """
    if tuple(doc.categories) != params.categories:
        raise InputError("the profile's categories differ from the policy's")
    clipped = [value if value > 0.0 else 0.0 for value in doc.histogram]
    try:
        total = math.fsum(clipped)  # documents bound each value to [0, 1]; this guards other callers
    except OverflowError as error:
        raise InputError(f"histogram: {error}") from error
    if total <= 0.0:
        histogram = tuple(1.0 / len(clipped) for _ in clipped)
    else:
        histogram = tuple(value / total for value in clipped)
    try:
        return OrgFeatures(
            family=doc.model_family,
            size_bucket=_size_bucket(doc.size_bucket),
            lora_rank=doc.peft.rank,
            pass1=doc.pass_at_1,
            pass1_delta=doc.pass_at_1_delta,
            categories=params.categories,
            category_hist=histogram,
            reputation=min(1.0, from_wad(reputation)),
            credits=from_wad(credits),
        )
    except ValueError as error:
        raise InputError(str(error)) from error


@dataclass(frozen=True)
class RoundInputs:
    """Everything a decision depends on, all derived from public data."""

    round_id: int
    inputs_block: int
    organizations: tuple[str, ...]
    profile_cids: Mapping[str, str]
    features: Mapping[str, OrgFeatures]
    excluded: Mapping[str, str] = dataclasses.field(default_factory=dict)  # org -> why it is left out
    max_pairs: int | None = None  # the contract's maxPairsPerRound at the inputs block


def gather_inputs(
    round_id: int, ledger: Ledger, profiles: ProfileInputs, params: PolicyParams
) -> RoundInputs:
    """The inputs of round `round_id` from a ledger folded up to the decision's inputs block.

    `profiles` holds the parsed documents by profile CID (text) and the organizations already
    left out while fetching; an eligible organization whose profile is unusable for this policy is
    left out too, with the reason (the same rule applies in the replay, so the choice is checkable).
    """
    organizations: list[str] = []
    cids: dict[str, str] = {}
    features: dict[str, OrgFeatures] = {}
    excluded: dict[str, str] = {}
    for address in ledger.eligible():
        if address in profiles.excluded:
            excluded[address] = profiles.excluded[address]
            continue
        record = ledger.organizations[address]
        try:
            cid = cid_text(record.profile_cid)
        except ValueError as error:
            excluded[address] = reason(INVALID, f"profile CID: {error}")
            continue
        doc = profiles.docs.get(cid)
        if doc is None:
            excluded[address] = UNAVAILABLE
            continue
        try:
            features[address] = features_from_profile(doc, params, record.reputation, record.credits)
        except InputError as error:
            excluded[address] = reason(INVALID, str(error))
            continue
        organizations.append(address)
        cids[address] = cid
    max_pairs = ledger.parameters.get("maxPairsPerRound")
    return RoundInputs(
        round_id, ledger.last_block, tuple(sorted(organizations)), cids, features, excluded, max_pairs
    )


class PolicyRunner:
    """A policy plus the bookkeeping that makes its decisions recordable and replayable."""

    def __init__(self, params: PolicyParams, seed: int) -> None:
        if params.name == "oracle":
            raise ValueError("the oracle policy exists in simulation only")
        self.params = params
        self.seed = seed
        self.policy = make_policy(params)
        self.commitment = policy_commitment(params, seed)
        self._pending_rewards: list[RewardInput] = []
        self.observed_rounds = 0

    def decide(self, inputs: RoundInputs) -> tuple[Decision, DecisionRecord]:
        """Score and match round `inputs.round_id`; nothing is learnt here."""
        if len(inputs.organizations) < 2:
            raise ValueError("a round needs at least two eligible organizations")
        decision = self.policy.select(
            inputs.round_id, inputs.organizations, inputs.features, rng_for_round(self.seed, inputs.round_id)
        )
        decision = cap_pairs(decision, inputs.max_pairs)
        return decision, self._record(decision, inputs)

    def _record(self, decision: Decision, inputs: RoundInputs) -> DecisionRecord:
        if decision.n_arms <= MAX_RECORDED_ARMS:
            arms = np.arange(decision.n_arms, dtype=np.int64)
            contexts = decision.contexts()
        else:
            arms = decision.chosen_arms
            contexts = decision.chosen_contexts
        ids = decision.org_ids
        # only the recorded arms' values: the all-arms views cost n (n - 1) floats apiece
        teachers, students = decision.arm_pairs(arms)
        mean, bonus, score = decision.arm_values(arms)
        candidates = tuple(
            Candidate(
                teacher=ids[int(teachers[row])],
                student=ids[int(students[row])],
                context=tuple(contexts[row].tolist()),
                mean=mean[row].item(),
                bonus=bonus[row].item(),
                score=score[row].item(),
            )
            for row in range(len(arms))
        )
        return DecisionRecord(
            round=inputs.round_id,
            policy=PolicyRecord(self.params.name, {"params": self.params.to_dict(), "seed": self.seed}),
            policy_digest=self.commitment,
            state_digest=decision.state_digest,
            orgs=decision.org_ids,
            profiles=dict(inputs.profile_cids),
            rewards=tuple(self._pending_rewards),
            candidates=candidates,
            chosen=tuple(DecisionPair(teacher, student) for teacher, student in decision.pairs),
            inputs_block=inputs.inputs_block,
            excluded=dict(inputs.excluded),
        )

    def observe(self, decision: Decision, outcome: LedgerRound) -> None:
        """Learn from a finalized round as it happened on chain (its pairs, its reported gains).

        The pairs on chain are normally the decision's; if a matchmaker deviated, the state
        follows what really happened, so later rounds stay comparable.
        """
        if not outcome.finalized:
            raise ValueError(f"round {outcome.round_id} is not finalized")
        realised = self._realised(decision, [(pair.teacher, pair.student) for pair in outcome.pairs])
        rewards: dict[tuple[str, str], float | None] = {}
        self._pending_rewards = []
        for pair in outcome.pairs:
            key = (pair.teacher, pair.student)
            if pair.gain is None:
                rewards[key] = None
                continue
            reward = from_wad(pair.gain)
            rewards[key] = reward
            self._pending_rewards.append(RewardInput(outcome.round_id, pair.teacher, pair.student, reward))
        self.policy.observe(realised, rewards)
        self.observed_rounds += 1

    @staticmethod
    def _realised(decision: Decision, pairs: list[tuple[str, str]]) -> Decision:
        if tuple(pairs) == decision.pairs:
            return decision
        index = {org: position for position, org in enumerate(decision.org_ids)}
        if any(teacher not in index or student not in index for teacher, student in pairs):
            raise ValueError("the round on chain pairs organizations the decision did not score")
        ordered = sorted(pairs)
        teachers = np.array([index[teacher] for teacher, _ in ordered], dtype=np.int64)
        students = np.array([index[student] for _, student in ordered], dtype=np.int64)
        n = len(decision.org_ids)
        return dataclasses.replace(
            decision,
            pairs=tuple(ordered),
            chosen_arms=arm_index(n, teachers, students),
            chosen_contexts=np.ascontiguousarray(build_contexts(decision.table, teachers, students)),
        )
