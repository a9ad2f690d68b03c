"""Accounts: Anvil's well-known development keys and keys from the environment."""

from __future__ import annotations

import os
from functools import cache

from eth_account import Account
from eth_account.signers.local import LocalAccount

# Anvil's default mnemonic: public knowledge, for local development chains only.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 10


@cache
def dev_account(index: int) -> LocalAccount:
    """The `index`-th funded account of a default Anvil node."""
    if not 0 <= index < DEV_ACCOUNT_COUNT:
        raise ValueError(f"dev account index must be in [0, {DEV_ACCOUNT_COUNT}), got {index}")
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return account


def account_from_env(variable: str) -> LocalAccount:
    """A key from an environment variable holding a 0x-prefixed private key (never from argv)."""
    key = os.environ.get(variable)
    if not key:
        raise KeyError(f"environment variable {variable} holds no private key")
    account: LocalAccount = Account.from_key(key)
    return account
