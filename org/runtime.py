"""The organization's agent at work: follow the chain, teach, learn, report, refresh the profile.

Every step reads the market's events (from the last block it processed), folds them into the
same ledger the matchmaker and auditors use, and does what is due in the open round:

- as a teacher whose bundle is not on chain yet: build it, seal it to the student's registered key,
  put it into the store and `publishBundle` its CID;
- as a student whose bundle is on chain and whose gain is not: fetch it, check it (CID, recipient,
  signer = the on-chain teacher, content), distil, evaluate, and `reportGain` with the CID of the
  adapter commitment. A bundle that fails a check of the sealing or the format (it does not open,
  is sealed to another key, signed by someone else, malformed) is disputed: the student puts a
  `market.disputes.DisputeEvidence` document into the store, disclosing that one envelope's key
  with a proof, and calls `disputeBundle` with its CID; the arbiter rules from the evidence alone.
  The student first runs the arbiter's own judge on its evidence and disputes only a defect the
  judge confirms (a false dispute costs its bond). A bundle the learner refuses for a typed reason
  the arbiter cannot check is reported with the worst gain (-1), the student's own reward, which
  never lowers the teacher. A bundle the store does not deliver is retried until shortly before
  the deadline, then reported neutrally (see `org.fetching`): a participant is never punished for
  someone else's fault;
- after a round it took part in is finalized: publish a refreshed profile (`updateProfile`).

Idempotent by construction: the chain says what is already done, and the contract refuses
duplicates; results made but not yet mined are kept in `state.json`, so a crash between learning and
reporting does not learn twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from coincurve import PrivateKey

from agent.errors import AgentError
from chain.client import MarketClient
from chain.errors import ContractReverted
from chain.units import to_wad
from exchange.cid import cid_binary, cid_text
from exchange.errors import ExchangeError, StoreError
from exchange.local import LocalStore
from exchange.store import ContentStore
from market.bundles import DEFAULT_LIMITS
from market.disputes import ephemeral_key, fetch_bounded, pair_facts, prepare_evidence
from market.documents import ProfileDoc
from market.errors import MarketError
from market.follower import ChainKey, EventCache, chain_key
from market.ledger import Ledger, LedgerFollower, LedgerPair, LedgerRound, OrganizationStatus
from market.sealing import open_knowledge, publish_sealed
from org.errors import LearnerRefusedError, OrgValueError
from org.fetching import (
    DEFAULT_GIVE_UP_BLOCKS,
    LEARNER_FAILURE_NOTE,
    NEUTRAL_GAIN,
    REJECTION_NOTE,
    UNAVAILABLE_NOTE,
    is_delivery_failure,
    keep_waiting,
    note,
)
from org.learners import Learner
from org.state import PendingReport, RuntimeState

log = logging.getLogger("knexa.org")
REJECTED_GAIN = -1.0


@dataclass(frozen=True)
class Action:
    """One thing the runtime did (for logs, `--json` output and tests)."""

    kind: str  # published | reported | rejected | unavailable | learner-failure | waiting | profile | ...
    round_id: int
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"action": self.kind, "round": self.round_id, "detail": self.detail}


class OrgRuntime:
    """One organization's agent. Not thread-safe; run one per organization."""

    def __init__(
        self,
        market: MarketClient,
        store: ContentStore,
        encryption_key: PrivateKey,
        learner: Learner,
        home: Path,
        from_block: int,
        give_up_blocks: int = DEFAULT_GIVE_UP_BLOCKS,
        demo_defective_round: int | None = None,
    ) -> None:
        """`demo_defective_round` (demos only): in that round, seal the bundles to this
        organization's own key instead of the student's, a defect the student proves by a dispute."""
        if market.account is None:
            raise OrgValueError("the runtime needs the organization's account")
        self.market = market
        self.store = store
        self.encryption_key = encryption_key
        self.learner = learner
        self.home = home
        self.private = LocalStore(home / "private")
        self.state_path = home / "state.json"
        self.state = RuntimeState.load(self.state_path)
        self.from_block = from_block
        self.give_up_blocks = give_up_blocks
        self.demo_defective_round = demo_defective_round
        self._waiting: set[str] = set()  # rounds whose bundle the store has not delivered yet (logged once)
        self._follower = LedgerFollower(market, from_block, EventCache(home / "events.jsonl"))
        self._adopt(chain_key(market, from_block))

    @property
    def address(self) -> str:
        assert self.market.account is not None
        return str(self.market.account.address)

    def _adopt(self, key: ChainKey) -> None:
        """Keep `state.json` only if it belongs to the chain `key`; else start clean (said once)."""
        if ChainKey.from_json(self.state.chain) == key:
            return
        if self.state != RuntimeState():
            log.warning(
                "state.json belongs to another chain (%s), not %s: a reset or redeploy; starting clean",
                self.state.chain or "no chain key",
                key.to_json(),
            )
        self.state = RuntimeState(chain=key.to_json())
        self._waiting.clear()
        self._save()

    def _sync(self) -> Ledger:
        resets = self._follower.resets
        ledger = self._follower.sync()[0]
        if self._follower.resets != resets:  # the follower started clean: so does the local state
            self._adopt(chain_key(self.market, self.from_block))
        return ledger

    def _save(self) -> None:
        self.state.save(self.state_path)

    # ------------------------------------------------------------------ the step

    def step(self) -> list[Action]:
        """Do everything that is due now; returns what was done."""
        ledger = self._sync()
        actions: list[Action] = []
        open_round = ledger.open_round()
        if open_round is not None and ledger.last_block < open_round.deadline_block:
            # (a transaction sent now is mined in the next block, which must not be past the deadline)
            for pair in open_round.pairs:
                if pair.teacher == self.address and pair.bundle_cid is None:
                    actions += self._in_time(open_round, partial(self._teach, ledger, open_round, pair))
            for pair in open_round.pairs:
                if (
                    pair.student == self.address
                    and pair.bundle_cid is not None
                    and pair.gain is None
                    and pair.evidence_cid is None
                ):
                    actions += self._in_time(open_round, partial(self._learn, ledger, open_round, pair))
        actions += self._refresh_profile(ledger)
        self._save()
        return actions

    def _in_time(self, round_record: LedgerRound, act: Callable[[], list[Action]]) -> list[Action]:
        """Run a teach/learn step; if the round closed while it worked (the learner was slower than
        the deadline), say so and go on: the market treats it as a no-show, the agent keeps running."""
        try:
            return act()
        except ContractReverted as error:
            if error.name not in ("RoundNotOpen", "DeadlinePassed"):
                raise
            log.warning("round %d closed before this organization finished: %s", round_record.round_id, error)
            return [Action("missed", round_record.round_id, f"the round closed first ({error.name})")]

    def _teach(self, ledger: Ledger, round_record: LedgerRound, pair: LedgerPair) -> list[Action]:
        student = ledger.organizations[pair.student]
        key = f"{round_record.round_id}:{pair.student}"
        if key in self.state.nothing_to_teach:
            return []
        try:
            bundle = self.learner.teach(
                round_record.round_id,
                self.address,
                pair.student,
                student_tokenizer=self._tokenizer_of(student.profile_cid),
            )
        except LearnerRefusedError as error:
            # Nothing worth sending (e.g. no completion passes the public tests): publish nothing
            # rather than noise; the market counts it as a no-show.
            self.state.nothing_to_teach.append(key)
            log.warning("round %d: nothing to teach %s: %s", round_record.round_id, student.name, error)
            return [Action("no-bundle", round_record.round_id, f"nothing to teach {student.name}: {error}")]
        assert self.market.account is not None
        recipient = student.encryption_public_key
        if round_record.round_id == self.demo_defective_round:
            recipient = bytes(self.encryption_key.public_key.format(compressed=True))
            log.warning(
                "round %d: demo: sealing the bundle for %s to the wrong key",
                round_record.round_id,
                student.name,
            )
        cid = publish_sealed(
            self.store,
            bundle,
            teacher_key=bytes(self.market.account.key),
            recipient_public_key=recipient,
        )
        try:
            self.market.publish_bundle(round_record.round_id, pair.student, cid_binary(cid))
        except ContractReverted as error:
            if error.name == "BundleAlreadyPublished":
                return []
            raise
        log.info("round %d: published bundle %s for %s", round_record.round_id, cid, pair.student)
        return [Action("published", round_record.round_id, f"bundle {cid} for {student.name}")]

    def _tokenizer_of(self, profile_cid: bytes) -> str | None:
        """The tokenizer digest a student's profile declares (None if absent or unreadable)."""
        try:
            base = ProfileDoc.from_bytes(self.store.get(cid_text(profile_cid))).base_model
        except (ExchangeError, MarketError):
            return None
        return None if base is None else base.tokenizer

    def _reject(self, round_id: int, teacher: str, teacher_name: str, error: Exception) -> PendingReport:
        """Record a typed rejection of a bundle (a public note, reported with the rejection gain)."""
        self.state.rejected[str(round_id)] = str(error)
        log.warning("round %d: refused the bundle of %s: %s", round_id, teacher_name, error)
        cid = self.store.put(note(REJECTION_NOTE, round_id, teacher, error))
        return PendingReport(teacher, REJECTED_GAIN, cid, str(error))

    def _neutral(self, kind: str, round_id: int, teacher: str, error: Exception) -> PendingReport:
        """Record an outcome that is no evidence against the teacher (reported with gain 0)."""
        self.state.neutral[str(round_id)] = f"{kind}: {error}"
        cid = self.store.put(note(kind, round_id, teacher, error))
        return PendingReport(teacher, NEUTRAL_GAIN, cid, f"{kind}: {error}")

    def _learn(self, ledger: Ledger, round_record: LedgerRound, pair: LedgerPair) -> list[Action]:
        key = str(round_record.round_id)
        pending = self.state.reports.get(key)
        kind = "reported"
        if pending is None or pending.teacher != pair.teacher:
            assert pair.bundle_cid is not None
            teacher = ledger.organizations[pair.teacher]
            try:
                bundle_cid = cid_text(pair.bundle_cid)
                bundle = open_knowledge(
                    bundle_cid,
                    self.store,
                    self.encryption_key.secret,
                    pair.teacher,
                    round_record.round_id,
                    self.address,
                )
            except (ExchangeError, MarketError) as error:
                if not is_delivery_failure(error):
                    disputed = self._dispute(ledger, round_record, pair, error)
                    if disputed is not None:
                        return disputed
                    pending = self._reject(round_record.round_id, pair.teacher, teacher.name, error)
                    kind = "rejected"
                elif keep_waiting(ledger.last_block, round_record.deadline_block, self.give_up_blocks):
                    if key not in self._waiting:
                        self._waiting.add(key)
                        log.warning("round %s: the store has not delivered the bundle yet: %s", key, error)
                    return [Action("waiting", round_record.round_id, f"bundle not delivered yet: {error}")]
                else:
                    log.warning("round %s: the bundle never arrived; reporting neutrally: %s", key, error)
                    pending = self._neutral(UNAVAILABLE_NOTE, round_record.round_id, pair.teacher, error)
                    kind = "unavailable"
            else:
                try:
                    result = self.learner.learn(bundle, teacher.name)
                except (LearnerRefusedError, AgentError, MarketError, ExchangeError) as error:
                    # typed: the learner found the bundle unusable
                    pending = self._reject(round_record.round_id, pair.teacher, teacher.name, error)
                    kind = "rejected"
                except Exception as error:  # never crash-loop; this is no evidence against the teacher
                    log.exception("round %s: the learner failed on the bundle of %s", key, teacher.name)
                    pending = self._neutral(LEARNER_FAILURE_NOTE, round_record.round_id, pair.teacher, error)
                    kind = "learner-failure"
                else:
                    adapter_cid = self.private.put(result.adapter)
                    measured = {
                        name: float(value)
                        for name, value in (
                            ("nll_before", result.nll_before),
                            ("nll_after", result.nll_after),
                            ("bundle_kib", result.bundle_kib),
                            ("pass1_gain", result.pass1_gain),
                        )
                        if value is not None
                    }
                    pending = PendingReport(
                        pair.teacher, result.gain, adapter_cid, result.detail, measured or None
                    )
            self.state.reports[key] = pending
            self._save()  # learnt once: a crash from here on resends, never relearns
        try:
            self.market.report_gain(
                round_record.round_id, pending.teacher, to_wad(pending.gain), cid_binary(pending.adapter_cid)
            )
        except ContractReverted as error:
            if error.name != "GainAlreadyReported":
                raise
        detail = f"gain {pending.gain:+.4f} from {ledger.organizations[pair.teacher].name}"
        if kind == "rejected":
            detail = f"refused the bundle of {ledger.organizations[pair.teacher].name}: {pending.note}"
        elif kind != "reported":
            detail = f"neutral report for {ledger.organizations[pair.teacher].name}: {pending.note}"
        return [Action(kind, round_record.round_id, detail)]

    def _dispute(
        self, ledger: Ledger, round_record: LedgerRound, pair: LedgerPair, error: Exception
    ) -> list[Action] | None:
        """Dispute a bundle whose defect the evidence proves; None if it would not (then it is refused
        with the worst gain instead), or if the store cannot give the bundle back now."""
        facts = pair_facts(ledger, round_record, pair)
        name = ledger.organizations[pair.teacher].name
        try:
            envelope = fetch_bounded(self.store, facts.bundle_cid, DEFAULT_LIMITS.max_bytes)
            others = self._other_ephemerals(ledger, pair)
        except StoreError:
            return None
        evidence, verdict = prepare_evidence(
            facts,
            envelope,
            self.encryption_key.secret,
            detail=f"{type(error).__name__}: {error}",
            other_ephemerals=others,
        )
        if not verdict.defective:
            log.warning(
                "round %d: the defect of %s's bundle is not provable: %s", facts.round_id, name, error
            )
            return None
        cid = self.store.put(evidence.to_bytes())
        self.state.disputed[str(facts.round_id)] = cid
        self._save()
        try:
            self.market.dispute_bundle(facts.round_id, pair.teacher, cid_binary(cid))
        except ContractReverted as reverted:
            if reverted.name != "WrongPairState":  # already disputed (a resend after a crash)
                raise
        log.warning(
            "round %d: disputed the bundle of %s (%s), evidence %s", facts.round_id, name, verdict.reason, cid
        )
        return [
            Action(
                "disputed", facts.round_id, f"disputed the bundle of {name}: {verdict.reason}; evidence {cid}"
            )
        ]

    def _other_ephemerals(self, ledger: Ledger, disputed: LedgerPair) -> set[bytes]:
        """The ephemeral keys of every other bundle published to this organization (any round): a
        disclosure for one of them would open that other bundle, so none is made (see
        `market.disputes.prepare_evidence`). Raises `StoreError` when one cannot be read now."""
        keys = set()
        for record in ledger.rounds.values():
            for pair in record.pairs:
                if pair.student != self.address or pair.bundle_cid is None or pair is disputed:
                    continue
                key = ephemeral_key(
                    fetch_bounded(self.store, cid_text(pair.bundle_cid), DEFAULT_LIMITS.max_bytes)
                )
                if key is not None:
                    keys.add(key)
        return keys

    def _refresh_profile(self, ledger: Ledger) -> list[Action]:
        finished = [
            record.round_id
            for record in ledger.finalized_rounds()
            if record.round_id > self.state.profile_round
            and any(self.address in (pair.teacher, pair.student) for pair in record.pairs)
        ]
        if not finished:
            return []
        latest = max(finished)
        me = ledger.organizations.get(self.address)
        if me is None or me.status is not OrganizationStatus.ACTIVE:
            self.state.profile_round = latest
            return []
        cid = self.store.put(self.learner.profile().to_bytes())
        if cid_binary(cid) != me.profile_cid:
            self.market.update_profile(cid_binary(cid))
        self.state.profile_round = latest
        return [Action("profile", latest, f"profile {cid}")]
