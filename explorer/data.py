"""Data access: chain + content store -> one `Snapshot` of typed view models, cached briefly.

Everything comes from public sources: the market's view functions and events (via `chain`), and
the documents whose CIDs those events carry (via the content store). Each request asks for a
snapshot; one is rebuilt at most every `ttl_s` seconds, so a page with many parts reads the chain
once, and a busy explorer does not hammer the node. A rebuild reads only new blocks
(`explorer.index.MarketIndex`), and every URL in it is redacted (`explorer.redact`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from chain.client import MarketClient, OrganizationStatus, Outcome, RoundStatus, connect
from chain.deploy import Deployment, verify_deployment
from chain.errors import ChainError, DeploymentError, NodeUnavailableError
from chain.events import ChainEvent
from chain.units import from_wad
from explorer.content import ContentReader, cid_text_or_none, decode_decision, decode_profile
from explorer.index import MarketIndex, identity_of
from explorer.models import (
    VERDICT_PENDING,
    ChainInfo,
    Counts,
    DisputeView,
    Document,
    EventView,
    History,
    OrganizationSeries,
    OrganizationView,
    PairCount,
    PairView,
    RecordCheck,
    ReputationMove,
    RewardView,
    RoundView,
    ScoreView,
    SeriesPoint,
    SlashView,
    Snapshot,
    StoreInfo,
    Summary,
    TxRef,
    Unavailable,
    VerdictView,
)
from explorer.redact import redact_text, redact_url
from explorer.verdicts import ReplayVerifier, VerifierFactory, with_verdict_disputes
from market.ledger import EventRef, Ledger, LedgerRound, RewardRecord

log = logging.getLogger(__name__)

RPC_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ExplorerSettings:
    manifest: Path
    rpc_url: str | None = None  # None: the manifest's
    block_explorer_url: str | None = None
    ttl_s: float = 3.0


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


def _tx(ref: EventRef | None) -> TxRef | None:
    return None if ref is None else TxRef(ref.transaction_hash, ref.block_number)


def _must_tx(ref: EventRef) -> TxRef:
    return TxRef(ref.transaction_hash, ref.block_number)


def _reward_view(reward: RewardRecord | None) -> RewardView | None:
    if reward is None:
        return None
    return RewardView(fee_wei=reward.fee, credits=from_wad(reward.credits), tx=_must_tx(reward.ref))


def short_address(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


class ExplorerData:
    """Builds and caches snapshots. Thread-safe: one rebuild at a time, readers share the result."""

    def __init__(
        self,
        settings: ExplorerSettings,
        content: ContentReader,
        verifier: VerifierFactory = ReplayVerifier,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.content = content
        self.verifier = verifier
        self.index: MarketIndex | None = None
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: Snapshot | Unavailable | None = None
        self._cached_at = 0.0
        self._w3: Web3 | None = None
        self._w3_url: str | None = None
        self.market: MarketClient | None = None
        self.deployment: Deployment | None = None

    def snapshot(self) -> Snapshot | Unavailable:
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached_at >= self.settings.ttl_s:
                built = self._build()
                if isinstance(built, Unavailable):  # error texts quote URLs: keep their secrets out
                    built = Unavailable(built.kind, built.title, redact_text(built.detail))
                self._cached = built
                self._cached_at = self.clock()
            return self._cached

    def _index_for(self, deployment: Deployment, market: MarketClient, head: int) -> MarketIndex:
        """The index of this market, or a fresh one when the chain was reset under the old one."""
        identity = identity_of(market, deployment.deploy_block)
        index = self.index
        if index is not None and (index.identity != identity or not index.continuous(head)):
            log.warning(
                "the chain was reset or reorganized under the explorer (block %d is not the one it read): "
                "indexing the market again from its deployment block",
                index.follower.read_through,
            )
            index = None
        if index is None:
            index = MarketIndex(
                market, deployment.deploy_block, identity, self, self.verifier(), self.content.store
            )
            self.index = index
        return index

    # ------------------------------------------------------------------ connection

    def _connect(self) -> tuple[Deployment, MarketClient] | Unavailable:
        try:
            deployment = Deployment.load(self.settings.manifest)
        except DeploymentError as error:
            return Unavailable("no-manifest", "No deployment manifest", str(error))
        rpc_url = self.settings.rpc_url or deployment.rpc_url
        if not rpc_url:
            return Unavailable("no-manifest", "No JSON-RPC URL", "the manifest names no RPC URL: pass --rpc")
        try:
            if self._w3 is None or self._w3_url != rpc_url:
                self._w3 = connect(rpc_url, timeout_s=RPC_TIMEOUT_S)
                self._w3_url = rpc_url
            market = verify_deployment(self._w3, deployment)
        except NodeUnavailableError as error:
            self._w3 = None
            return Unavailable("rpc-unreachable", "The chain's JSON-RPC node is unreachable", str(error))
        except DeploymentError as error:
            message = str(error)
            if "no contract" in message:
                return Unavailable(
                    "reset-chain",
                    "The market is not on this chain (was it reset?)",
                    f"{message}. The manifest {self.settings.manifest} points at an address without code "
                    f"on {rpc_url}: redeploy (`knexa chain up` / `knexa chain deploy`) and reload.",
                )
            return Unavailable("wrong-code", "The manifest does not match the chain", message)
        self.deployment = deployment
        self.market = market
        return deployment, market

    def _build(self) -> Snapshot | Unavailable:
        connected = self._connect()
        if isinstance(connected, Unavailable):
            self.market = None  # nothing is served for a market that cannot be checked now
            return connected
        deployment, market = connected
        try:
            return self._read(deployment, market)
        except NodeUnavailableError as error:
            self._w3 = None
            return Unavailable("rpc-unreachable", "The chain's JSON-RPC node is unreachable", str(error))
        except ChainError as error:
            return Unavailable("rpc-unreachable", "The chain answered with an error", str(error))

    # ------------------------------------------------------------------ reading

    def _read(self, deployment: Deployment, market: MarketClient) -> Snapshot:
        self.content.probe()
        index = self._index_for(deployment, market, market.block_number())
        ledger, block_number = index.refresh()
        events = index.events

        organizations = list(index.organizations.values())
        names = {org.address: org.name for org in organizations}
        rounds = index.rounds(ledger, names)

        reachable, store_detail = self.content.status()
        notices: list[str] = []
        if not self.content.configured:
            notices.append("No content store is configured: profiles and decision records are not shown.")
        elif not reachable:
            notices.append(f"Degraded: {redact_text(store_detail)}. Chain data is shown; documents are not.")
        chain_info = ChainInfo(
            chain_id=market.chain_id,
            block_number=block_number,
            rpc_url=redact_url(self._w3_url or ""),
            market_address=market.address,
            deploy_block=deployment.deploy_block,
            deploy_transaction=deployment.deploy_transaction,
            admin=deployment.admin,
            matchmaker=deployment.matchmaker,
            compiler_version=deployment.compiler_version,
        )
        parameters = {key: int(value) for key, value in asdict(market.parameters()).items()}
        counts = Counts(
            organizations=len(organizations),
            active_organizations=sum(1 for org in organizations if org.status == "active"),
            rounds=len(rounds),
            finalized_rounds=sum(1 for item in rounds if item.status == "finalized"),
            pairs=sum(len(item.pairs) for item in rounds),
            events=len(events),
        )
        summary = Summary(
            chain=chain_info,
            parameters=parameters,
            counts=counts,
            store=StoreInfo(
                configured=self.content.configured,
                description=redact_text(self.content.describe()),
                reachable=reachable,
                detail=redact_text(store_detail),
            ),
            open_round_id=market.open_round_id(),
            notices=notices,
            block_explorer_url=(
                redact_url(self.settings.block_explorer_url) if self.settings.block_explorer_url else None
            ),
        )
        return Snapshot(
            summary=summary,
            organizations=organizations,
            rounds=rounds,
            events=list(events),
            history=_history(organizations, rounds),
        )

    # ------------------------------------------------------------------ views (`explorer.index.Views`)

    def event_view(self, event: ChainEvent) -> EventView:
        return EventView(
            name=event.name,
            block_number=event.block_number,
            transaction_hash=event.transaction_hash,
            log_index=event.log_index,
            args=_jsonable(event.args),
        )

    def refresh_organization(self, view: OrganizationView) -> OrganizationView:
        """`view` with its profile fetched again (it was missing or the store was down)."""
        if view.profile_cid is None:
            return view
        return dataclasses.replace(view, profile=self._profile(view.profile_cid))

    def _profile(self, cid: str) -> Document:
        document = self.content.fetch(cid, "profile", decode_profile)
        return dataclasses.replace(document, detail=redact_text(document.detail))

    def round_view(
        self, market: MarketClient, record: LedgerRound, names: dict[str, str], verdict: VerdictView | None
    ) -> RoundView:
        return self._round(market, record, names, verdict)

    def organization_view(self, market: MarketClient, address: str, ledger: Ledger) -> OrganizationView:
        for org in [market.organization(address)]:
            record = ledger.organizations.get(org.address)
            binary = record.profile_cid if record is not None else None
            profile_cid = cid_text_or_none(binary) if binary is not None else None
            profile: Document | None = None
            if profile_cid is not None:
                profile = self._profile(profile_cid)
            elif binary is not None:
                profile = Document(
                    "0x" + binary.hex(), "invalid", detail="the profile CID is not a valid CID"
                )
            return OrganizationView(
                address=org.address,
                name=org.name,
                status=OrganizationStatus(org.status).name.lower(),
                stake_wei=org.stake,
                stake_eth=from_wad(org.stake),
                reputation_wad=org.reputation,
                reputation=from_wad(org.reputation),
                credits_wad=org.credits,
                credits=from_wad(org.credits),
                pending_withdrawal_wei=market.pending_withdrawal(org.address),
                registered_at_block=org.registered_at_block,
                exit_available_at_block=org.exit_available_at_block,
                registration=_tx(record.registered if record is not None else None),
                profile_cid=profile_cid,
                profile=profile,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _round(
        self,
        market: MarketClient,
        record: LedgerRound,
        names: dict[str, str],
        verdict: VerdictView | None,
    ) -> RoundView:
        round_id = record.round_id
        state = market.round(round_id)
        decision_cid = cid_text_or_none(record.decision_cid)
        decision = self.content.fetch(decision_cid, "decision", decode_decision) if decision_cid else None
        scores = _scores(decision)
        slashes = [
            SlashView(
                offender=slash.offender,
                beneficiary=slash.beneficiary,
                amount_wei=slash.amount,
                reason=slash.reason.name.lower().replace("_", " "),
                tx=_must_tx(slash.ref),
            )
            for slash in record.slashes
        ]
        folded = {(pair.teacher, pair.student): pair for pair in record.pairs}
        pairs = []
        for pair in market.pairs(round_id):
            key = (pair.teacher, pair.student)
            seen = folded.get(key)
            reward = record.reward_of(*key)
            gain = seen.gain if seen is not None else None
            pairs.append(
                PairView(
                    index=pair.index,
                    teacher=pair.teacher,
                    student=pair.student,
                    teacher_name=names.get(pair.teacher, short_address(pair.teacher)),
                    student_name=names.get(pair.student, short_address(pair.student)),
                    assigned=_tx(seen.assigned if seen else None),
                    score=scores.get(key),
                    bundle_cid=cid_text_or_none(seen.bundle_cid) if seen and seen.bundle_cid else None,
                    bundle=_tx(seen.published if seen else None),
                    gain=from_wad(gain) if gain is not None else None,
                    gain_wad=gain,
                    adapter_cid=cid_text_or_none(seen.adapter_cid) if seen and seen.adapter_cid else None,
                    report=_tx(seen.reported if seen else None),
                    reward=(
                        RewardView(
                            fee_wei=reward.fee, credits=from_wad(reward.credits), tx=_must_tx(reward.ref)
                        )
                        if reward
                        else None
                    ),
                    slashes=[
                        s for s in slashes if {s.offender, s.beneficiary} == {pair.teacher, pair.student}
                    ],
                )
            )
        moves = [
            ReputationMove(
                organization=move.organization,
                old=from_wad(move.old),
                new=from_wad(move.new),
                tx=_must_tx(move.ref),
            )
            for move in record.reputation_moves
        ]
        policy_digest = state.policy_digest.hex()
        the_verdict = verdict or VerdictView(round_id, VERDICT_PENDING, None, "the replay gave no verdict")
        return RoundView(
            round_id=round_id,
            status=RoundStatus(state.status).name.lower(),
            opened_at_block=state.opened_at_block,
            deadline_block=state.deadline_block,
            pair_count=state.pair_count,
            exchange_fee_wei=state.exchange_fee,
            policy_digest=policy_digest,
            decision_cid=decision_cid,
            decision=decision,
            record_check=_check_record(round_id, decision, policy_digest, pairs),
            opened=_tx(record.opened),
            finalized=_tx(record.finalized_ref),
            pairs=pairs,
            slashes=slashes,
            reputation_moves=moves,
            verdict=the_verdict,
            disputes=_disputes(record, names, the_verdict),
        )


_OUTCOMES = {Outcome.DEFECTIVE: "defective", Outcome.UNFOUNDED: "unfounded", Outcome.UNRESOLVED: "unresolved"}


def _disputes(record: LedgerRound, names: dict[str, str], verdict: VerdictView) -> list[DisputeView]:
    """The round's disputes (pair order) with the ruling on chain and the replay's judgement of it."""
    views = []
    for pair in record.pairs:
        if pair.evidence_cid is None:
            continue
        outcome = "open" if pair.outcome is None else _OUTCOMES.get(pair.outcome, pair.outcome.name.lower())
        views.append(
            DisputeView(
                round_id=record.round_id,
                pair_index=pair.index,
                teacher=pair.teacher,
                student=pair.student,
                teacher_name=names.get(pair.teacher, short_address(pair.teacher)),
                student_name=names.get(pair.student, short_address(pair.student)),
                evidence_cid=cid_text_or_none(pair.evidence_cid),
                disputed=_tx(pair.disputed),
                outcome=outcome,
                verdict_cid=cid_text_or_none(pair.verdict_cid) if pair.verdict_cid else None,
                ruled=_tx(pair.settled) if pair.outcome is not None else None,
                replay=VERDICT_PENDING,
                replay_detail="",
                first_difference=None,
            )
        )
    return with_verdict_disputes(views, verdict)


def _scores(decision: Document | None) -> dict[tuple[str, str], ScoreView]:
    if decision is None or decision.state != "decoded" or not isinstance(decision.content, dict):
        return {}
    scores = {}
    for candidate in decision.content.get("candidates", []):
        scores[(candidate["teacher"], candidate["student"])] = ScoreView(
            mean=float(candidate["mean"]), bonus=float(candidate["bonus"]), score=float(candidate["score"])
        )
    return scores


def _check_record(
    round_id: int, decision: Document | None, policy_digest: str, pairs: Iterable[PairView]
) -> RecordCheck | None:
    """Does the decision record say what the chain says? (A cheap check; the replay goes further.)"""
    if decision is None or decision.state != "decoded" or not isinstance(decision.content, dict):
        return None
    content = decision.content
    problems = []
    if content.get("round") != round_id:
        problems.append(f"the record is for round {content.get('round')}, not {round_id}")
    if content.get("policy_digest") != policy_digest:
        problems.append("the record's policy digest differs from the one committed on chain")
    chosen = {(item["teacher"], item["student"]) for item in content.get("chosen", [])}
    on_chain = {(pair.teacher, pair.student) for pair in pairs}
    if chosen != on_chain:
        problems.append(
            f"the record chose {len(chosen)} pairs, the chain assigned {len(on_chain)}; "
            f"{len(chosen ^ on_chain)} differ"
        )
    return RecordCheck(ok=not problems, problems=problems)


def _history(organizations: list[OrganizationView], rounds: list[RoundView]) -> History:
    series = []
    for org in organizations:
        reputation: list[SeriesPoint] = []
        received: list[SeriesPoint] = []
        caused: list[SeriesPoint] = []
        for item in rounds:
            moves = [move for move in item.reputation_moves if move.organization == org.address]
            if moves:  # an organization can move twice in a round (as teacher and as student)
                if not reputation:
                    reputation.append(SeriesPoint(item.round_id - 1, moves[0].old))
                reputation.append(SeriesPoint(item.round_id, moves[-1].new))
            if not moves and reputation and item.status == "finalized":
                # no event means no change: carry the value forward so every line covers every round
                reputation.append(SeriesPoint(item.round_id, reputation[-1].value))
            for pair in item.pairs:
                if pair.gain is None:
                    continue
                if pair.student == org.address:
                    received.append(SeriesPoint(item.round_id, pair.gain))
                if pair.teacher == org.address:
                    caused.append(SeriesPoint(item.round_id, pair.gain))
        series.append(OrganizationSeries(org.address, org.name, reputation, received, caused))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for item in rounds:
        for pair in item.pairs:
            counts[(pair.teacher, pair.student)] += 1
    return History(
        rounds=[item.round_id for item in rounds],
        organizations=series,
        pair_counts=[PairCount(teacher, student, n) for (teacher, student), n in sorted(counts.items())],
    )
