"""An organization's identity on disk: encrypted keys and its configuration.

Layout of an organization's home (default `.knexa/orgs/<name>`):

- `keystore.json`: the Ethereum account (Web3 Secret Storage v3, scrypt), which signs transactions
  and bundles;
- `encryption.json`: the secp256k1 key bundles are encrypted to (same keystore format, so it is
  never on disk in clear); its public half is registered on chain;
- `config.json`: where the chain and the store are, and the learner's settings;
- `state.json`, `private/`: the runtime's progress and the organization's private objects
  (adapters), written by `knexa org join`.

Passwords come from `$KNEXA_PASSWORD` or a prompt, never from the command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coincurve import PrivateKey
from eth_account import Account
from eth_account.signers.local import LocalAccount

from clikit.defaults import DEFAULT_MANIFEST, DEFAULT_RPC_URL, DEFAULT_STATE_DIR, DEFAULT_STORE

PASSWORD_ENV = "KNEXA_PASSWORD"
KDF_ITERATIONS = 2**15  # scrypt n: ~0.4 s to unlock here; raise it for long-lived production keys


class IdentityError(Exception):
    """The identity is missing, already exists, or cannot be unlocked."""


@dataclass
class OrgConfig:
    """Where the organization's chain and store are, and how it learns."""

    name: str
    rpc_url: str = DEFAULT_RPC_URL
    manifest: str = str(DEFAULT_MANIFEST)
    store: str = DEFAULT_STORE
    learner: dict[str, Any] = field(default_factory=lambda: {"kind": "synthetic", "seed": 0})
    poll_seconds: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrgConfig:
        try:
            return cls(**data)
        except TypeError as error:
            raise IdentityError(f"malformed organization config: {error}") from error


@dataclass
class OrgIdentity:
    """An unlocked identity: the account, the encryption key and the configuration."""

    home: Path
    account: LocalAccount
    encryption_key: PrivateKey
    config: OrgConfig

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def encryption_public_key(self) -> bytes:
        return bytes(self.encryption_key.public_key.format(compressed=True))


def default_home(name: str) -> Path:
    """`$KNEXA_HOME/orgs/NAME`; a name that is not a plain file name (`a/b`, `..`, spaces) gets a
    slug plus a digest of the name instead, so every name the CLI accepts has a home of its own."""
    root = Path(os.environ.get("KNEXA_HOME", str(DEFAULT_STATE_DIR)))
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}", name):
        return root / "orgs" / name
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "org"
    return root / "orgs" / f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    path.chmod(0o600)


def create_identity(
    home: Path, config: OrgConfig, password: str, account_key: bytes | None = None
) -> OrgIdentity:
    """Create keys and config under `home`; refuses to touch an existing identity.

    `account_key` imports an existing Ethereum key (e.g. a funded one); otherwise a fresh key is made.
    """
    if (home / "keystore.json").exists() or (home / "config.json").exists():
        raise IdentityError(f"an identity already exists in {home}; refusing to overwrite it")
    if not password:
        raise IdentityError("an empty password would leave the keys unprotected")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    account: LocalAccount = Account.from_key(account_key or secrets.token_bytes(32))
    encryption_key = PrivateKey(secrets.token_bytes(32))
    _write_private(home / "keystore.json", Account.encrypt(account.key, password, iterations=KDF_ITERATIONS))
    _write_private(
        home / "encryption.json", Account.encrypt(encryption_key.secret, password, iterations=KDF_ITERATIONS)
    )
    (home / "config.json").write_text(json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n")
    return OrgIdentity(home, account, encryption_key, config)


def load_config(home: Path) -> OrgConfig:
    path = home / "config.json"
    if not path.exists():
        raise IdentityError(f"no organization in {home}: run `knexa org init NAME` first")
    return OrgConfig.from_json(json.loads(path.read_text(encoding="utf-8")))


def unlock(home: Path, password: str) -> OrgIdentity:
    """Decrypt the keys of the organization in `home`."""
    config = load_config(home)
    try:
        account: LocalAccount = Account.from_key(
            Account.decrypt(json.loads((home / "keystore.json").read_text()), password)
        )
        secret = Account.decrypt(json.loads((home / "encryption.json").read_text()), password)
    except (ValueError, OSError) as error:
        raise IdentityError(f"cannot unlock the keys in {home}: {error}") from error
    return OrgIdentity(home, account, PrivateKey(bytes(secret)), config)


def address_of(home: Path) -> str:
    """The organization's address, readable without the password (the keystore stores it)."""
    try:
        return "0x" + str(json.loads((home / "keystore.json").read_text())["address"]).removeprefix("0x")
    except (OSError, KeyError, ValueError) as error:
        raise IdentityError(f"no keystore in {home}") from error
