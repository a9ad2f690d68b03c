"""Sealing and opening the market's bundles (`KnowledgeBundle`, `AdapterBundle`).

`exchange.sealing` signs and encrypts opaque payloads; this module binds those envelopes to the
market's bundle formats: a knowledge bundle's own round, teacher and student must agree with its
signed envelope, and the payload is checked by its format's reader before anyone uses it.
"""

from __future__ import annotations

from eth_account import Account

from exchange.cid import verify_content
from exchange.ecies import private_key_bytes
from exchange.errors import HeaderMismatchError, SchemaError
from exchange.schema import checksum_address
from exchange.sealing import Compression, Kind, open_envelope, seal
from exchange.store import ContentStore
from market.bundles import DEFAULT_LIMITS, AdapterBundle, KnowledgeBundle, Limits

Bundle = KnowledgeBundle | AdapterBundle
_KINDS: dict[str, type[KnowledgeBundle] | type[AdapterBundle]] = {
    "knowledge": KnowledgeBundle,
    "adapter": AdapterBundle,
}


def seal_bundle(
    bundle: Bundle,
    *,
    teacher_key: bytes | str,
    recipient_public_key: bytes | str,
    round: int | None = None,
    student: str | None = None,
    compression: Compression = "none",
) -> bytes:
    """Seal a bundle for its student. A `KnowledgeBundle` names its round, teacher and student
    itself (and `teacher_key` must be that teacher's); an `AdapterBundle` needs `round` and `student`."""
    teacher = str(Account.from_key(private_key_bytes(teacher_key)).address)
    kind: Kind = "adapter"
    if isinstance(bundle, KnowledgeBundle):
        if bundle.teacher != teacher:
            raise SchemaError(f"bundle names teacher {bundle.teacher} but the key is {teacher}'s")
        if (round is not None and round != bundle.round) or (
            student is not None and checksum_address(student) != bundle.student
        ):
            raise SchemaError("round/student arguments contradict the bundle")
        round, student, kind = bundle.round, bundle.student, "knowledge"
    elif round is None or student is None:
        raise SchemaError("sealing an adapter bundle needs round and student")
    return seal(
        bundle.to_bytes(),
        kind=kind,
        round=round,
        teacher_key=teacher_key,
        student=student,
        recipient_public_key=recipient_public_key,
        compression=compression,
    )


def publish_sealed(
    store: ContentStore,
    bundle: Bundle,
    *,
    teacher_key: bytes | str,
    recipient_public_key: bytes | str,
    round: int | None = None,
    student: str | None = None,
    compression: Compression = "none",
) -> str:
    """Seal a bundle (see `seal_bundle`) and put it into `store`; return its CID for `publishBundle`."""
    envelope = seal_bundle(
        bundle,
        teacher_key=teacher_key,
        recipient_public_key=recipient_public_key,
        round=round,
        student=student,
        compression=compression,
    )
    return store.put(envelope)


def open_sealed(
    cid: str,
    store: ContentStore,
    recipient_private_key: bytes | str,
    expected_teacher: str,
    expected_round: int,
    expected_student: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> Bundle:
    """Fetch a sealed bundle by CID and return its content once every check passed (module docstring).

    `expected_teacher`, `expected_round` and `expected_student` come from the chain (the round's
    `PairAssigned` and `BundlePublished` events), never from the bundle itself.
    """
    envelope = store.get(cid, max_bytes=limits.max_bytes)
    verify_content(envelope, cid)  # the store verified too; this does not rely on it
    header, payload = open_envelope(
        envelope,
        recipient_private_key,
        expected_teacher=expected_teacher,
        expected_round=expected_round,
        expected_student=expected_student,
        max_bytes=limits.max_bytes,
    )
    bundle = _KINDS[header.kind].from_bytes(payload, limits)
    if isinstance(bundle, KnowledgeBundle) and (bundle.round, bundle.teacher, bundle.student) != (
        header.round,
        header.teacher,
        header.student,
    ):
        raise HeaderMismatchError("the bundle's round, teacher or student differ from its signed envelope")
    return bundle


def open_knowledge(
    cid: str,
    store: ContentStore,
    recipient_private_key: bytes | str,
    expected_teacher: str,
    expected_round: int,
    expected_student: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> KnowledgeBundle:
    """`open_sealed` for a student that expects a knowledge bundle (anything else is a `SchemaError`)."""
    bundle = open_sealed(
        cid, store, recipient_private_key, expected_teacher, expected_round, expected_student, limits=limits
    )
    if not isinstance(bundle, KnowledgeBundle):
        raise SchemaError(f"expected a knowledge bundle, got {type(bundle).__name__}")
    return bundle
