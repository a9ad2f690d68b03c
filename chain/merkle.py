"""The Merkle tree of a round's pairs, exactly as KnexaMarket builds and checks it (pure, no node).

Leaf of pair `i` (teacher -> student) of round `r`:
    keccak256(keccak256(abi.encode(uint256 r, uint256 i, address teacher, address student)))
(the double hash of OpenZeppelin's standard trees: a 64-byte inner node can never pass as a leaf).
Tree: the leaves in pair order; each level hashes neighbours (2j, 2j+1) with the commutative
keccak256 (the smaller word first), and an odd last node moves up unchanged. A proof is the list of
siblings from the leaf up, which OpenZeppelin's `MerkleProof.verify` accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from chain.errors import ChainError

PAIR_BYTES = 40


class MerkleError(ChainError):
    """A pair list or proof that cannot be what the contract expects."""


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + to_canonical_address(address)


def pair_leaf(round_id: int, index: int, teacher: str, student: str) -> bytes:
    """The 32-byte leaf of pair `index` of round `round_id`."""
    inner = keccak(_word(round_id) + _word(index) + _address_word(teacher) + _address_word(student))
    return keccak(inner)


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative keccak256 of two nodes."""
    return keccak(a + b) if a < b else keccak(b + a)


def _next_level(nodes: list[bytes]) -> list[bytes]:
    parents = [hash_pair(nodes[2 * j], nodes[2 * j + 1]) for j in range(len(nodes) // 2)]
    if len(nodes) % 2 == 1:
        parents.append(nodes[-1])
    return parents


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        raise MerkleError("a round has at least one pair")
    nodes = list(leaves)
    while len(nodes) > 1:
        nodes = _next_level(nodes)
    return nodes[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Siblings of leaf `index` from the bottom up (promoted odd nodes contribute none)."""
    if not 0 <= index < len(leaves):
        raise MerkleError(f"leaf {index} out of range for {len(leaves)} leaves")
    nodes = list(leaves)
    proof: list[bytes] = []
    while len(nodes) > 1:
        sibling = index ^ 1
        if sibling < len(nodes):
            proof.append(nodes[sibling])
        nodes = _next_level(nodes)
        index //= 2
    return proof


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root


def pack_pairs(pairs: Sequence[tuple[str, str]]) -> bytes:
    """`openRound`'s packed pair list: 20-byte teacher then 20-byte student, per pair."""
    return b"".join(
        to_canonical_address(teacher) + to_canonical_address(student) for teacher, student in pairs
    )


def unpack_pairs(packed: bytes) -> list[tuple[str, str]]:
    if not packed or len(packed) % PAIR_BYTES:
        raise MerkleError(
            f"a packed pair list has a positive multiple of {PAIR_BYTES} bytes, not {len(packed)}"
        )
    return [
        (to_checksum_address(packed[at : at + 20]), to_checksum_address(packed[at + 20 : at + 40]))
        for at in range(0, len(packed), PAIR_BYTES)
    ]


@dataclass(frozen=True)
class PairTree:
    """The pairs of one round with their leaves and root (what the decision record carries)."""

    round_id: int
    pairs: tuple[tuple[str, str], ...]
    leaves: tuple[bytes, ...]
    root: bytes

    @classmethod
    def build(cls, round_id: int, pairs: Sequence[tuple[str, str]]) -> PairTree:
        checked = tuple((to_checksum_address(t), to_checksum_address(s)) for t, s in pairs)
        leaves = tuple(pair_leaf(round_id, index, t, s) for index, (t, s) in enumerate(checked))
        return cls(round_id, checked, leaves, merkle_root(leaves))

    def index_of_student(self, student: str) -> int:
        key = to_checksum_address(student)
        for index, (_, pair_student) in enumerate(self.pairs):
            if pair_student == key:
                return index
        raise MerkleError(f"round {self.round_id} has no pair with student {key}")

    @cached_property
    def levels(self) -> tuple[tuple[bytes, ...], ...]:
        """Every level of the tree, leaves first (built once: a round's proofs cost O(log n) each)."""
        levels = [list(self.leaves)]
        while len(levels[-1]) > 1:
            levels.append(_next_level(levels[-1]))
        return tuple(tuple(level) for level in levels)

    def proof(self, index: int) -> list[bytes]:
        """`merkle_proof(self.leaves, index)`, read off the cached levels."""
        if not 0 <= index < len(self.leaves):
            raise MerkleError(f"leaf {index} out of range for {len(self.leaves)} leaves")
        proof: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof

    def packed(self) -> bytes:
        return pack_pairs(self.pairs)
