"""Typed view models: what the pages and the JSON API show, built from chain + content store.

Plain frozen dataclasses, so FastAPI derives the OpenAPI schema of `/api/...` from them and the
Jinja2 templates read the same objects the API returns. Amounts are kept both raw (wei / WAD
integers, exact) and as floats (for reading and charts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERDICT_MATCH = "match"
VERDICT_MISMATCH = "mismatch"
VERDICT_UNVERIFIABLE = "unverifiable"
VERDICT_UNAVAILABLE = "unavailable"  # the explorer could not run the replay at all (see `detail`)
VERDICT_PENDING = "pending"  # no verdict for this round (e.g. opened after the replay ran)


@dataclass(frozen=True)
class TxRef:
    """Where something happened on chain."""

    transaction_hash: str
    block_number: int


@dataclass(frozen=True)
class ChainInfo:
    chain_id: int
    block_number: int
    rpc_url: str
    market_address: str
    deploy_block: int
    deploy_transaction: str
    admin: str
    matchmaker: str
    compiler_version: str


@dataclass(frozen=True)
class Document:
    """A content-addressed document as fetched (and verified against its CID) from the store."""

    cid: str
    state: str  # "decoded", "unrecognised" (JSON, not a known format), "missing", "invalid", "unavailable"
    kind: str | None = None  # "knexa.profile", "knexa.decision" or None
    content: Any = None  # the decoded JSON when state is "decoded" or "unrecognised"
    detail: str = ""


@dataclass(frozen=True)
class OrganizationView:
    address: str
    name: str
    status: str
    stake_wei: int
    stake_eth: float
    reputation_wad: int
    reputation: float
    credits_wad: int
    credits: float
    pending_withdrawal_wei: int
    registered_at_block: int
    exit_available_at_block: int
    registration: TxRef | None
    profile_cid: str | None
    profile: Document | None


@dataclass(frozen=True)
class ScoreView:
    """The bandit's numbers for one directed pair, from the round's decision record."""

    mean: float
    bonus: float
    score: float


@dataclass(frozen=True)
class RewardView:
    fee_wei: int
    credits: float
    tx: TxRef


@dataclass(frozen=True)
class SlashView:
    offender: str
    beneficiary: str
    amount_wei: int
    reason: str
    tx: TxRef


@dataclass(frozen=True)
class ReputationMove:
    organization: str
    old: float
    new: float
    tx: TxRef


@dataclass(frozen=True)
class PairView:
    index: int
    teacher: str
    student: str
    teacher_name: str
    student_name: str
    assigned: TxRef | None
    score: ScoreView | None
    bundle_cid: str | None
    bundle: TxRef | None
    gain: float | None
    gain_wad: int | None
    adapter_cid: str | None
    report: TxRef | None
    reward: RewardView | None
    slashes: list[SlashView] = field(default_factory=list)


@dataclass(frozen=True)
class DisputeReplayView:
    """The replay's judgement of one dispute (`matchmaker.audit.DisputeAudit`)."""

    pair_index: int
    verdict: str  # match | mismatch | unverifiable | pending
    first_difference: str | None
    detail: str
    recomputed_defective: bool | None


@dataclass(frozen=True)
class VerdictView:
    round_id: int
    verdict: str  # match | mismatch | unverifiable | unavailable | pending
    first_difference: str | None
    detail: str
    disputes: list[DisputeReplayView] = field(default_factory=list)


@dataclass(frozen=True)
class DisputeView:
    """A dispute of a round: the evidence on chain, the arbiter's ruling, and whether replay agrees."""

    round_id: int
    pair_index: int
    teacher: str
    student: str
    teacher_name: str
    student_name: str
    evidence_cid: str | None
    disputed: TxRef | None
    outcome: str  # open | defective | unfounded | unresolved
    verdict_cid: str | None
    ruled: TxRef | None
    replay: str  # match | mismatch | unverifiable | pending | unavailable
    replay_detail: str
    first_difference: str | None


@dataclass(frozen=True)
class RecordCheck:
    """The explorer's own consistency check of a decision record against the chain (not a replay)."""

    ok: bool
    problems: list[str]


@dataclass(frozen=True)
class RoundView:
    round_id: int
    status: str
    opened_at_block: int
    deadline_block: int
    pair_count: int
    exchange_fee_wei: int
    policy_digest: str
    decision_cid: str | None
    decision: Document | None
    record_check: RecordCheck | None
    opened: TxRef | None
    finalized: TxRef | None
    pairs: list[PairView]
    slashes: list[SlashView]
    reputation_moves: list[ReputationMove]
    verdict: VerdictView
    disputes: list[DisputeView] = field(default_factory=list)


@dataclass(frozen=True)
class EventView:
    name: str
    block_number: int
    transaction_hash: str
    log_index: int
    args: dict[str, Any]


@dataclass(frozen=True)
class StoreInfo:
    configured: bool
    description: str
    reachable: bool
    detail: str


@dataclass(frozen=True)
class Counts:
    organizations: int
    active_organizations: int
    rounds: int
    finalized_rounds: int
    pairs: int
    events: int


@dataclass(frozen=True)
class Summary:
    chain: ChainInfo
    parameters: dict[str, int]
    counts: Counts
    store: StoreInfo
    open_round_id: int
    notices: list[str]
    block_explorer_url: str | None


@dataclass(frozen=True)
class SeriesPoint:
    round_id: int
    value: float


@dataclass(frozen=True)
class OrganizationSeries:
    address: str
    name: str
    reputation: list[SeriesPoint]
    gain_received: list[SeriesPoint]
    gain_caused: list[SeriesPoint]


@dataclass(frozen=True)
class PairCount:
    teacher: str
    student: str
    rounds: int


@dataclass(frozen=True)
class History:
    """Per-organization series over rounds and how often each directed pair was chosen."""

    rounds: list[int]
    organizations: list[OrganizationSeries]
    pair_counts: list[PairCount]


@dataclass(frozen=True)
class Snapshot:
    """Everything the explorer shows, read at one block."""

    summary: Summary
    organizations: list[OrganizationView]
    rounds: list[RoundView]
    events: list[EventView]
    history: History


@dataclass(frozen=True)
class Unavailable:
    """Why nothing can be shown: no manifest, node unreachable, or the chain was reset."""

    kind: str  # "no-manifest" | "rpc-unreachable" | "reset-chain" | "wrong-code"
    title: str
    detail: str
