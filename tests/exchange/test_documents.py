"""Canonical JSON and the two public documents: same content, same bytes, same CID."""

from __future__ import annotations

import math
import struct
from dataclasses import replace

import numpy as np
import pytest
from eth_account import Account

from exchange.canonical import dumps_canonical, loads_canonical
from exchange.cid import cid_of
from exchange.errors import (
    NonCanonicalError,
    NonFiniteError,
    OutOfBoundsError,
    OversizedError,
    SchemaError,
    UnknownFormatError,
)
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from market.documents import (
    Candidate,
    DecisionPair,
    DecisionRecord,
    PeftSummary,
    PolicyRecord,
    ProfileDoc,
    RewardInput,
)

ORGS = [Account.from_key(bytes([i + 1]) * 32).address for i in range(4)]


def profile(**changes: object) -> ProfileDoc:
    base = ProfileDoc(
        model_family="llama",
        size_bucket="100M-300M",
        peft=PeftSummary(rank=8, target_modules=("v_proj", "q_proj")),
        pass_at_1=0.125,
        pass_at_1_delta=-0.03125,
        categories=("strings", "math", "lists"),
        histogram=(0.625, 0.0, 0.375),
        epsilon=0.5,
        budget_spent=1.5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def decision() -> DecisionRecord:
    a, b, c, d = ORGS
    return DecisionRecord(
        round=7,
        policy=PolicyRecord("linucb", {"alpha": 0.75, "ridge": 1.0, "seed": 3, "greedy": False}),
        policy_digest="ab" * 32,
        state_digest="0f" * 32,
        orgs=(a, b, c, d),
        profiles={a: profile().cid(), b: profile(size_bucket="1B").cid()},
        rewards=(RewardInput(6, a, b, 0.0625), RewardInput(6, c, d, -0.01)),
        candidates=(
            Candidate(a, b, (1.0, 0.1, 1 / 3), 0.2, 0.4, 0.6000000000000001),
            Candidate(b, a, (1.0, 0.2, 2 / 3), 0.1, 0.3, 0.4),
            Candidate(c, d, (1.0, 5e-324, -0.0), -0.1, 0.9, 0.8),
        ),
        chosen=(DecisionPair(a, b), DecisionPair(c, d)),
    )


# --- canonical JSON -----------------------------------------------------------------------------


def test_canonical_form_is_sorted_compact_utf8() -> None:
    assert dumps_canonical({"b": [1, 2.5], "a": "é", "c": None}) == '{"a":"é","b":[1,2.5],"c":null}'.encode()


def test_floats_round_trip_float64_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 2**64, 2000, dtype=np.uint64)
    values = [v for v in raw.view(np.float64).tolist() if math.isfinite(v)]
    values += [0.1 + 0.2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 1e16, 1e-7]
    parsed = loads_canonical(dumps_canonical(values))
    assert isinstance(parsed, list)
    assert [struct.pack("<d", v) for v in parsed] == [struct.pack("<d", v) for v in values]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_when_writing(bad: float) -> None:
    with pytest.raises(NonFiniteError):
        dumps_canonical({"x": [1.0, bad]})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b'{"x":NaN}', NonFiniteError),
        (b'{"x":Infinity}', NonFiniteError),
        (b'{"x":1e400}', NonFiniteError),
        (b'{"b":1,"a":2}', NonCanonicalError),
        (b'{"a": 1}', NonCanonicalError),
        (b'{"a":1,"a":1}', NonCanonicalError),
        (b'{"a":1.50}', NonCanonicalError),
        (b'{"a":"\\u00e9"}', NonCanonicalError),
        (b"\xff", SchemaError),
        (b'{"a":', SchemaError),
        (b'{"a":9007199254740993}', SchemaError),
    ],
)
def test_non_canonical_or_invalid_bytes_are_refused(text: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        loads_canonical(text)


def test_document_size_limit() -> None:
    with pytest.raises(OversizedError):
        loads_canonical(dumps_canonical(["x" * 100]), max_bytes=50)


# --- ProfileDoc ---------------------------------------------------------------------------------


def test_profile_round_trips_and_is_canonical() -> None:
    doc = profile()
    data = doc.to_bytes()
    assert ProfileDoc.from_bytes(data) == doc
    assert doc.peft.target_modules == ("q_proj", "v_proj")  # sorted: one order, one CID
    assert profile(peft=PeftSummary(8, ("q_proj", "v_proj"))).cid() == doc.cid()
    assert doc.cid() == cid_of(data)
    assert profile(pass_at_1=0.126).cid() != doc.cid()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"pass_at_1": 1.5}, SchemaError),
        ({"pass_at_1": math.nan}, NonFiniteError),
        ({"histogram": (1.0, math.inf, 0.0)}, NonFiniteError),
        ({"histogram": (1.0, 2.0)}, SchemaError),
        ({"histogram": (1e308, 1e308, 1e308)}, OutOfBoundsError),
        ({"histogram": (0.5, 0.5, 0.5)}, OutOfBoundsError),
        ({"histogram": (1.5, -0.5, 0.0)}, OutOfBoundsError),
        ({"histogram": (math.nan, 0.5, 0.5)}, NonFiniteError),
        ({"pass_at_1_delta": -1.5}, OutOfBoundsError),
        ({"epsilon": 1e300, "budget_spent": 1e300}, OutOfBoundsError),
        ({"budget_spent": 1e300}, OutOfBoundsError),
        ({"categories": ("a", "a", "b")}, SchemaError),
        ({"epsilon": 0.0}, SchemaError),
        ({"budget_spent": 0.1}, SchemaError),
        ({"model_family": ""}, SchemaError),
    ],
)
def test_profile_rules(changes: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        profile(**changes)


def test_profile_of_another_version_or_with_extra_fields_is_refused() -> None:
    value = profile().to_json()
    with pytest.raises(UnknownFormatError):
        ProfileDoc.from_bytes(dumps_canonical({**value, "version": 2}))
    with pytest.raises(UnknownFormatError):
        ProfileDoc.from_bytes(dumps_canonical({**value, "format": "knexa.decision"}))
    with pytest.raises(SchemaError, match="unknown fields"):
        ProfileDoc.from_bytes(dumps_canonical({**value, "raw_data": "leak"}))
    with pytest.raises(SchemaError, match="float"):
        ProfileDoc.from_bytes(dumps_canonical({**value, "validation": {"pass_at_1": 0, "delta": 0.0}}))


# --- DecisionRecord -----------------------------------------------------------------------------


def test_decision_round_trips_exactly() -> None:
    record = decision()
    data = record.to_bytes()
    again = DecisionRecord.from_bytes(data)
    assert again == record
    assert again.to_bytes() == data
    assert again.candidates[2].context[1] == 5e-324
    assert math.copysign(1.0, again.candidates[2].context[2]) == -1.0  # -0.0 survives


def test_decision_addresses_are_checksummed_whatever_the_input() -> None:
    a, b, *_ = ORGS
    assert DecisionPair(a.lower(), b.lower()) == DecisionPair(a, b)
    value = decision().to_json()
    value["orgs"] = [org.lower() for org in ORGS]
    with pytest.raises(SchemaError, match="checksummed"):
        DecisionRecord.from_bytes(dumps_canonical(value))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: replace(r, chosen=(DecisionPair(ORGS[0], ORGS[2]),)),  # not a scored candidate
        lambda r: replace(
            r, chosen=(DecisionPair(ORGS[0], ORGS[1]), DecisionPair(ORGS[0], ORGS[1]))
        ),  # twice a teacher
        lambda r: replace(r, orgs=(ORGS[0], ORGS[1], ORGS[2])),  # candidate names a non-member
        lambda r: replace(r, orgs=(*ORGS, ORGS[0])),  # duplicate org
        lambda r: replace(r, rewards=(RewardInput(7, ORGS[0], ORGS[1], 0.1),)),  # reward from the future
        lambda r: replace(r, state_digest="0x" + "ab" * 31),
        lambda r: replace(r, candidates=(*r.candidates[:2], replace(r.candidates[2], context=(1.0,)))),
    ],
)
def test_decision_rules(mutate: object) -> None:
    with pytest.raises(SchemaError):
        mutate(decision())  # type: ignore[operator]


def test_decision_rejects_nan_scores() -> None:
    with pytest.raises(NonFiniteError):
        Candidate(ORGS[0], ORGS[1], (1.0,), math.nan, 0.0, 0.0)
    value = decision().to_json()
    text = dumps_canonical(value).replace(b'"mean":0.2', b'"mean":NaN')
    with pytest.raises(NonFiniteError):
        DecisionRecord.from_bytes(text)


@pytest.mark.ipfs
def test_documents_get_the_same_cid_everywhere(ipfs_store: IpfsStore, local_store: LocalStore) -> None:
    for document in (profile(), decision()):
        data = document.to_bytes()
        assert ipfs_store.put(data, pin=False) == local_store.put(data) == document.cid()
        fetched = ipfs_store.get(document.cid())
        assert type(document).from_bytes(fetched) == document


def test_exclusions_round_trip_sorted_and_are_omitted_when_empty() -> None:
    outsider = Account.from_key(bytes([9]) * 32).address
    other = Account.from_key(bytes([10]) * 32).address
    record = replace(decision(), excluded={outsider: "unavailable: NotFoundError: gone", other: "oversized"})
    value = record.to_json()
    inputs = value["inputs"]
    assert isinstance(inputs, dict)
    listed = inputs["excluded"]
    assert isinstance(listed, list)
    assert [item["organization"] for item in listed] == sorted([outsider, other])  # type: ignore[index,call-overload]
    assert DecisionRecord.from_bytes(record.to_bytes()) == record
    assert "excluded" not in decision().to_json()["inputs"]  # type: ignore[operator]  # old records keep their CID
    with pytest.raises(SchemaError, match="sorted"):
        DecisionRecord.from_json({**value, "inputs": {**inputs, "excluded": listed[::-1]}})
    with pytest.raises(SchemaError, match="in the round"):
        replace(decision(), excluded={ORGS[0]: "oversized"})
    with pytest.raises(OutOfBoundsError):
        RewardInput(6, ORGS[0], ORGS[1], 1e308)


def test_a_decision_record_carries_the_merkle_leaves_and_root_of_its_pairs() -> None:
    from chain.merkle import PairTree

    record = decision()
    tree = PairTree.build(record.round, [(p.teacher, p.student) for p in record.chosen])
    assert record.leaves == tuple(leaf.hex() for leaf in tree.leaves)
    assert record.pairs_root == tree.root.hex() == record.leaves_root()
    parsed = DecisionRecord.from_bytes(record.to_bytes())
    assert parsed == record
    # A record read back keeps what it says (so that replay can flag it), even a root that lies
    doc = record.to_json()
    doc["merkle"] = {"leaves": list(record.leaves or ()), "root": "00" * 32}
    lying = DecisionRecord.from_bytes(dumps_canonical(doc))
    assert lying.pairs_root == "00" * 32
    assert lying.leaves_root() == tree.root.hex()
    doc["merkle"] = {"leaves": ["not hex"], "root": None}
    with pytest.raises(SchemaError):
        DecisionRecord.from_bytes(dumps_canonical(doc))
    del doc["merkle"]
    with pytest.raises(SchemaError, match="merkle"):
        DecisionRecord.from_bytes(dumps_canonical(doc))
