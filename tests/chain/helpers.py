"""Small builders shared by the chain tests."""

from __future__ import annotations

from coincurve import PrivateKey
from eth_account.signers.local import LocalAccount
from multiformats import CID, multihash

from chain.client import MarketClient
from chain.devchain import DevChain
from chain.units import ether


def cid_of(text: str) -> bytes:
    """A real binary CIDv1 (raw, sha2-256) of `text`."""
    return bytes(CID("base32", 1, "raw", multihash.digest(text.encode(), "sha2-256")))


def public_key(seed: int) -> bytes:
    """A valid compressed secp256k1 public key."""
    return bytes(PrivateKey(seed.to_bytes(32, "big")).public_key.format(compressed=True))


def account_of(client: MarketClient) -> LocalAccount:
    assert client.account is not None
    return client.account


def register_three(chain: DevChain, stake: int = ether(2)) -> list[MarketClient]:
    orgs = [chain.organization(index) for index in range(3)]
    for index, org in enumerate(orgs):
        org.register(f"org-{index}", cid_of(f"profile-{index}"), public_key(index + 1), stake)
    return orgs


def ring(orgs: list[MarketClient]) -> list[tuple[str, str]]:
    addresses = [account_of(org).address for org in orgs]
    return [(addresses[i], addresses[(i + 1) % len(addresses)]) for i in range(len(addresses))]


def open_ring(
    chain: DevChain, orgs: list[MarketClient], blocks: int = 20
) -> tuple[int, list[tuple[str, str]]]:
    pairs = ring(orgs)
    round_id = chain.matchmaker().next_round_id()
    deadline = chain.w3.eth.block_number + blocks
    chain.matchmaker().open_round(round_id, cid_of(f"decision-{round_id}"), b"\x01" * 32, pairs, deadline)
    return deadline, pairs
