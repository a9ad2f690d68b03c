"""Disputes over a defective bundle: the student's evidence, the arbiter's verdict, and the judge.

A student that cannot open its bundle, or finds it signed by someone else, sealed to another key,
or malformed, proves it with a `DisputeEvidence` document (its CID goes on chain with
`disputeBundle`). The evidence discloses the envelope's ECIES shared point with a proof that it is
the true one (`exchange.disclosure`): anyone can then derive that one envelope's key and redo every
check the student's runtime made, and nothing else of the student's is revealed.

`judge` is the arbiter's decision: a pure function of the pair's chain facts (`PairFacts`: round,
pair index, teacher, student, bundle CID, the student's registered key), the evidence bytes and the
bundle bytes. It runs the checks in the order `market.sealing.open_sealed` runs them and stops at
the first that fails:

    evidence   the document parses (canonical JSON, at most MAX_EVIDENCE_BYTES, every field checked)
               and names exactly this pair and bundle                 fails: not defective
    size       the envelope is at most `Limits.max_bytes`             fails: defective
    header     the public header parses and names the round, teacher and student on chain
    recipient  the header's recipient key is the student's registered key
    key        the disclosed shared point is proven for that key and the envelope's ephemeral key
               (or no key is needed: a check above failed)             fails: not defective
    decrypt    AES-GCM opens with the key derived from the point
    signature  the signed plaintext inflates within the limits and is signed by the teacher
    content    the payload is a valid knowledge bundle (limits, shapes, finite numbers) for the pair

A failing bundle check makes the bundle defective; a failing evidence or key check means the
student proved nothing, so the dispute is unfounded (the bond goes to the teacher). The
`DisputeVerdict` document names every check run with its result; replay (`matchmaker.audit`)
recomputes it byte for byte. What is not a proven defect (the store did not deliver, the learner
crashed, the learner found the bundle useless) is never disputed.

Schema of `DisputeEvidence` (format "knexa.dispute-evidence", version 1):

    {"format", "version", "round": int, "pair_index": int in [0, 2047],
     "teacher": address, "student": address, "bundle_cid": cid,
     "claim": one of CLAIMS (the check the student found failing; informative),
     "disclosure": null | {"shared_point": hex66, "proof": {"a": hex66, "b": hex66, "z": hex64}},
     "detail": str (at most 1,024 characters)}

Schema of `DisputeVerdict` (format "knexa.dispute-verdict", version 1):

    {"format", "version", "round", "pair_index", "teacher", "student", "bundle_cid",
     "evidence_cid": cid, "checks": [{"check": str, "passed": bool, "detail": str}],
     "defective": bool, "reason": str}
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import ClassVar

from exchange.canonical import Json, loads_canonical
from exchange.cid import cid_text, normalize_cid
from exchange.disclosure import KeyDisclosure, disclose, envelope_key, verify_disclosure
from exchange.ecies import decrypt_with_key
from exchange.errors import ExchangeError, OversizedError, SchemaError
from exchange.schema import (
    CanonicalDocument,
    as_address,
    as_cid,
    as_int,
    as_object,
    as_str,
    check_format,
    checksum_address,
)
from exchange.sealing import (
    associated_data,
    check_header,
    ciphertext_of,
    read_header,
    verify_plaintext,
)
from exchange.store import ContentStore
from market.bundles import DEFAULT_LIMITS, KnowledgeBundle, Limits
from market.errors import MarketError
from market.ledger import Ledger, LedgerPair, LedgerRound

MAX_EVIDENCE_BYTES = 16 << 10
MAX_VERDICT_BYTES = 64 << 10
MAX_DETAIL = 1024
MAX_PAIR_INDEX = 2047  # the contract's hard limit of pairs per round, minus one
BUNDLE_CHECKS = ("size", "header", "recipient", "decrypt", "signature", "content")
CLAIMS = BUNDLE_CHECKS
EVIDENCE_FORMAT = "knexa.dispute-evidence"
VERDICT_FORMAT = "knexa.dispute-verdict"


class DisputeError(MarketError, ValueError):
    """Evidence that proves nothing: malformed, oversized, about another pair, or with a bad key."""


class EvidenceFormatError(DisputeError):
    """The evidence document is not a well-formed `DisputeEvidence` (or is over its size limit)."""


class EvidenceMismatchError(DisputeError):
    """The evidence names another round, pair, teacher, student or bundle than the disputed one."""


class EvidenceKeyError(DisputeError):
    """The disclosed shared point is missing or not proven to be the envelope's."""


def _hex(value: Json, path: str, size: int) -> bytes:
    text = as_str(value, path, 2 * size)
    if len(text) != 2 * size or text != text.lower():
        raise SchemaError(f"{path}: {2 * size} lowercase hex digits expected")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise SchemaError(f"{path}: not hex") from None


def _detail(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_DETAIL]


@dataclass(frozen=True)
class PairFacts:
    """What the chain says about a disputed pair (the judge trusts nothing else)."""

    round_id: int
    pair_index: int
    teacher: str
    student: str
    bundle_cid: str
    student_key: bytes  # the student's registered 33-byte encryption public key


def pair_facts(ledger: Ledger, round_record: LedgerRound, pair: LedgerPair) -> PairFacts:
    """The chain facts a dispute of `pair` is judged on (its bundle must be on chain)."""
    if pair.bundle_cid is None:
        raise MarketError(f"round {round_record.round_id} pair {pair.index} has no bundle")
    return PairFacts(
        round_record.round_id,
        pair.index,
        pair.teacher,
        pair.student,
        cid_text(pair.bundle_cid),
        ledger.organizations[pair.student].encryption_public_key,
    )


@dataclass(frozen=True)
class DisputeEvidence(CanonicalDocument):
    round: int
    pair_index: int
    teacher: str
    student: str
    bundle_cid: str
    claim: str
    disclosure: KeyDisclosure | None
    detail: str = ""
    version: int = 1

    FORMAT: ClassVar[str] = EVIDENCE_FORMAT
    VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    def __post_init__(self) -> None:
        as_int(self.round, "round", 0, 2**53)
        as_int(self.pair_index, "pair_index", 0, MAX_PAIR_INDEX)
        object.__setattr__(self, "teacher", checksum_address(self.teacher, "teacher"))
        object.__setattr__(self, "student", checksum_address(self.student, "student"))
        object.__setattr__(self, "bundle_cid", normalize_cid(self.bundle_cid))
        if self.claim not in CLAIMS:
            raise SchemaError(f"claim must be one of {list(CLAIMS)}, not {self.claim!r}")
        as_str(self.detail, "detail", MAX_DETAIL, empty=True)
        if self.version not in self.VERSIONS:
            raise SchemaError(f"version {self.version} is not supported")

    def to_json(self) -> dict[str, Json]:
        disclosure: Json = None
        if self.disclosure is not None:
            d = self.disclosure
            disclosure = {
                "shared_point": d.shared_point.hex(),
                "proof": {"a": d.proof_a.hex(), "b": d.proof_b.hex(), "z": d.proof_z.hex()},
            }
        return {
            "format": self.FORMAT,
            "version": self.version,
            "round": self.round,
            "pair_index": self.pair_index,
            "teacher": self.teacher,
            "student": self.student,
            "bundle_cid": self.bundle_cid,
            "claim": self.claim,
            "disclosure": disclosure,
            "detail": self.detail,
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> DisputeEvidence:
        """Parse evidence; every problem is an `EvidenceFormatError`."""
        if len(data) > MAX_EVIDENCE_BYTES:
            raise EvidenceFormatError(
                f"evidence is {len(data)} bytes, over the limit of {MAX_EVIDENCE_BYTES}"
            )
        try:
            keys = ("format", "version", "round", "pair_index", "teacher", "student", "bundle_cid")
            doc = as_object(
                loads_canonical(data, max_bytes=MAX_EVIDENCE_BYTES),
                "$",
                (*keys, "claim", "disclosure", "detail"),
            )
            version = check_format(doc, cls.FORMAT, cls.VERSIONS)
            disclosure = None
            if doc["disclosure"] is not None:
                raw = as_object(doc["disclosure"], "disclosure", ("shared_point", "proof"))
                proof = as_object(raw["proof"], "disclosure.proof", ("a", "b", "z"))
                disclosure = KeyDisclosure(
                    _hex(raw["shared_point"], "disclosure.shared_point", 33),
                    _hex(proof["a"], "disclosure.proof.a", 33),
                    _hex(proof["b"], "disclosure.proof.b", 33),
                    _hex(proof["z"], "disclosure.proof.z", 32),
                )
            return cls(
                round=as_int(doc["round"], "round", 0, 2**53),
                pair_index=as_int(doc["pair_index"], "pair_index", 0, MAX_PAIR_INDEX),
                teacher=as_address(doc["teacher"], "teacher"),
                student=as_address(doc["student"], "student"),
                bundle_cid=as_cid(doc["bundle_cid"], "bundle_cid"),
                claim=as_str(doc["claim"], "claim"),
                disclosure=disclosure,
                detail=as_str(doc["detail"], "detail", MAX_DETAIL, empty=True),
                version=version,
            )
        except (ExchangeError, ValueError) as error:
            raise EvidenceFormatError(f"malformed evidence: {_detail(error)}") from None


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Json]:
        return {"check": self.check, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class DisputeVerdict(CanonicalDocument):
    round: int
    pair_index: int
    teacher: str
    student: str
    bundle_cid: str
    evidence_cid: str
    checks: tuple[CheckResult, ...]
    defective: bool
    reason: str
    version: int = 1

    FORMAT: ClassVar[str] = VERDICT_FORMAT
    VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    def to_json(self) -> dict[str, Json]:
        return {
            "format": self.FORMAT,
            "version": self.version,
            "round": self.round,
            "pair_index": self.pair_index,
            "teacher": self.teacher,
            "student": self.student,
            "bundle_cid": self.bundle_cid,
            "evidence_cid": self.evidence_cid,
            "checks": [check.to_json() for check in self.checks],
            "defective": self.defective,
            "reason": self.reason,
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> DisputeVerdict:
        """Parse a verdict document (as recorded; replay compares it with its own)."""
        keys = ("format", "version", "round", "pair_index", "teacher", "student", "bundle_cid")
        doc = as_object(
            loads_canonical(data, max_bytes=MAX_VERDICT_BYTES),
            "$",
            (*keys, "evidence_cid", "checks", "defective", "reason"),
        )
        version = check_format(doc, cls.FORMAT, cls.VERSIONS)
        raw_checks = doc["checks"]
        if not isinstance(raw_checks, list) or len(raw_checks) > 16:
            raise SchemaError("checks: a list of at most 16 checks expected")
        checks = []
        for index, item in enumerate(raw_checks):
            entry = as_object(item, f"checks[{index}]", ("check", "passed", "detail"))
            if not isinstance(entry["passed"], bool):
                raise SchemaError(f"checks[{index}].passed: expected a boolean")
            checks.append(
                CheckResult(
                    as_str(entry["check"], f"checks[{index}].check"),
                    entry["passed"],
                    as_str(entry["detail"], f"checks[{index}].detail", MAX_DETAIL + 64, empty=True),
                )
            )
        if not isinstance(doc["defective"], bool):
            raise SchemaError("defective: expected a boolean")
        return cls(
            round=as_int(doc["round"], "round", 0, 2**53),
            pair_index=as_int(doc["pair_index"], "pair_index", 0, MAX_PAIR_INDEX),
            teacher=as_address(doc["teacher"], "teacher"),
            student=as_address(doc["student"], "student"),
            bundle_cid=as_cid(doc["bundle_cid"], "bundle_cid"),
            evidence_cid=as_cid(doc["evidence_cid"], "evidence_cid"),
            checks=tuple(checks),
            defective=doc["defective"],
            reason=as_str(doc["reason"], "reason", MAX_DETAIL + 128, empty=True),
            version=version,
        )


# --- checking ------------------------------------------------------------------------------------


def check_evidence(facts: PairFacts, data: bytes | None) -> DisputeEvidence:
    """The evidence, if it is well formed and names exactly the disputed pair and bundle.

    `data` is None when the store refused the document as over `MAX_EVIDENCE_BYTES`.
    Raises `EvidenceFormatError` or `EvidenceMismatchError` (both `DisputeError`s).
    """
    if data is None:
        raise EvidenceFormatError(f"evidence is over the limit of {MAX_EVIDENCE_BYTES} bytes")
    evidence = DisputeEvidence.from_bytes(data)
    named = (evidence.round, evidence.pair_index, evidence.teacher, evidence.student, evidence.bundle_cid)
    expected = (
        facts.round_id,
        facts.pair_index,
        facts.teacher,
        facts.student,
        normalize_cid(facts.bundle_cid),
    )
    if named != expected:
        field = ("round", "pair_index", "teacher", "student", "bundle_cid")[
            next(i for i, (a, b) in enumerate(zip(named, expected, strict=True)) if a != b)
        ]
        raise EvidenceMismatchError(f"the evidence names another {field} than the disputed pair's")
    return evidence


def check_key(evidence: DisputeEvidence, facts: PairFacts, ephemeral: bytes) -> KeyDisclosure:
    """The disclosure, if it is proven for the student's key and this envelope; else `EvidenceKeyError`."""
    if evidence.disclosure is None:
        raise EvidenceKeyError("the evidence discloses no key, and the bundle's defect needs one")
    try:
        verify_disclosure(evidence.disclosure, facts.student_key, ephemeral)
    except ExchangeError as error:
        raise EvidenceKeyError(f"the disclosed key is not this envelope's: {error}") from None
    return evidence.disclosure


def judge(
    facts: PairFacts,
    evidence_cid: str,
    evidence: bytes | None,
    envelope: bytes | None,
    limits: Limits = DEFAULT_LIMITS,
) -> DisputeVerdict:
    """The verdict on a dispute (module docstring). `envelope` None: the store refused the bundle
    as over `limits.max_bytes`. Pure: the same inputs always give the same document."""
    checks: list[CheckResult] = []

    def verdict(defective: bool, reason: str) -> DisputeVerdict:
        return DisputeVerdict(
            round=facts.round_id,
            pair_index=facts.pair_index,
            teacher=facts.teacher,
            student=facts.student,
            bundle_cid=normalize_cid(facts.bundle_cid),
            evidence_cid=normalize_cid(evidence_cid),
            checks=tuple(checks),
            defective=defective,
            reason=reason,
        )

    def failed(check: str, error: BaseException | str, defective: bool) -> DisputeVerdict:
        checks.append(CheckResult(check, False, error if isinstance(error, str) else _detail(error)))
        if defective:
            return verdict(True, f"the bundle fails the {check} check")
        return verdict(False, f"the evidence proves no defect ({check} check failed)")

    try:
        disputed = check_evidence(facts, evidence)
    except DisputeError as error:
        return failed("evidence", error, defective=False)
    checks.append(CheckResult("evidence", True, f"claim {disputed.claim}"))
    if envelope is None or len(envelope) > limits.max_bytes:
        return failed("size", f"the sealed bundle is over the limit of {limits.max_bytes} bytes", True)
    checks.append(CheckResult("size", True, f"{len(envelope)} bytes"))
    try:
        header, ciphertext = read_header(envelope)
        check_header(
            header,
            expected_teacher=facts.teacher,
            expected_round=facts.round_id,
            expected_student=facts.student,
        )
    except ExchangeError as error:
        return failed("header", error, defective=True)
    checks.append(CheckResult("header", True, f"round {header.round}, {header.teacher} -> {header.student}"))
    if header.recipient != facts.student_key:
        return failed("recipient", "the bundle is sealed to another key than the student's", True)
    checks.append(CheckResult("recipient", True, "sealed to the student's registered key"))
    try:
        disclosure = check_key(disputed, facts, header.ephemeral)
    except DisputeError as error:
        return failed("key", error, defective=False)
    checks.append(CheckResult("key", True, "the shared point is proven for the student's key"))
    try:
        key = envelope_key(disclosure, facts.student_key, header.ephemeral)
        plaintext = decrypt_with_key(ciphertext_of(header, ciphertext), key, associated_data(header))
    except ExchangeError as error:
        return failed("decrypt", error, defective=True)
    checks.append(CheckResult("decrypt", True, f"{len(plaintext)} bytes of plaintext"))
    try:
        payload = verify_plaintext(
            header, plaintext, expected_teacher=facts.teacher, max_bytes=limits.max_bytes
        )
    except ExchangeError as error:
        return failed("signature", error, defective=True)
    checks.append(CheckResult("signature", True, f"signed by {facts.teacher}"))
    try:
        if header.kind != "knowledge":
            raise SchemaError(f"expected a knowledge bundle, got {header.kind!r}")
        bundle = KnowledgeBundle.from_bytes(payload, limits)
        if (bundle.round, bundle.teacher, bundle.student) != (header.round, header.teacher, header.student):
            raise SchemaError("the bundle's round, teacher or student differ from its signed envelope")
    except ExchangeError as error:
        return failed("content", error, defective=True)
    checks.append(CheckResult("content", True, f"a knowledge bundle of {len(bundle.prompt_ids)} prompts"))
    return verdict(False, "the bundle opens with the disclosed key and passes every check")


def ephemeral_key(envelope: bytes | None) -> bytes | None:
    """The ephemeral public key a (parseable) envelope header names, else None."""
    if envelope is None:
        return None
    try:
        return read_header(envelope)[0].ephemeral
    except ExchangeError:
        return None


def prepare_evidence(
    facts: PairFacts,
    envelope: bytes | None,
    recipient_private_key: bytes | str,
    detail: str = "",
    *,
    other_ephemerals: Collection[bytes] = (),
) -> tuple[DisputeEvidence, DisputeVerdict]:
    """As the student: the evidence for `facts`' bundle and the verdict the arbiter will reach.

    The student disputes only when that verdict is defective (a dispute it would lose costs its bond).
    `other_ephemerals` are the ephemeral keys of the other envelopes ever sealed to the student: a
    teacher that copies one of them into its header would make the disclosure open that other
    envelope, so no key is disclosed then (and without a key the defect is not proven).
    """
    disclosure = None
    ephemeral = ephemeral_key(envelope)
    if ephemeral is not None and ephemeral not in set(other_ephemerals):
        try:
            disclosure = disclose(recipient_private_key, ephemeral)
        except ExchangeError:
            disclosure = None  # not a curve point: decryption fails for everyone, no key is needed

    def evidence_with(claim: str) -> DisputeEvidence:
        return DisputeEvidence(
            round=facts.round_id,
            pair_index=facts.pair_index,
            teacher=facts.teacher,
            student=facts.student,
            bundle_cid=facts.bundle_cid,
            claim=claim,
            disclosure=disclosure,
            detail=detail[:MAX_DETAIL],
        )

    draft = evidence_with(BUNDLE_CHECKS[-1])
    outcome = judge(facts, draft.cid(), draft.to_bytes(), envelope)
    failing = next((c.check for c in outcome.checks if not c.passed), BUNDLE_CHECKS[-1])
    evidence = evidence_with(failing if failing in CLAIMS else BUNDLE_CHECKS[-1])
    return evidence, judge(facts, evidence.cid(), evidence.to_bytes(), envelope)


def fetch_bounded(store: ContentStore, cid: str, max_bytes: int) -> bytes | None:
    """The object at `cid`, or None if the store refuses it as larger than `max_bytes`.

    Store failures (`StoreError`) propagate: an object that cannot be fetched now is no fact."""
    try:
        return store.get(cid, max_bytes=max_bytes)
    except OversizedError:
        return None


def fetch_and_judge(
    store: ContentStore, facts: PairFacts, evidence_cid: bytes | str, limits: Limits = DEFAULT_LIMITS
) -> DisputeVerdict:
    """Fetch the evidence and the bundle and judge (store failures propagate: retry later)."""
    evidence_text = evidence_cid if isinstance(evidence_cid, str) else cid_text(evidence_cid)
    evidence = fetch_bounded(store, evidence_text, MAX_EVIDENCE_BYTES)
    envelope = fetch_bounded(store, facts.bundle_cid, limits.max_bytes)
    return judge(facts, evidence_text, evidence, envelope, limits)
