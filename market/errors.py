"""The market package's errors: one root, mixed with the builtin each one refines.

Callers catch `MarketError` (or a subclass); the builtin mix-ins keep `except ValueError` callers
working, as web3.py does with `Web3ValueError(Web3Exception, ValueError)`.
"""

from __future__ import annotations


class MarketError(Exception):
    """Root of every error raised by `market`."""


class MarketValueError(MarketError, ValueError):
    """A value is outside what the protocol allows (a bound, a type, a category list)."""


class PrivacyBudgetExceededError(MarketError, ValueError):
    """A release would spend more privacy budget than the accountant allows."""


class LedgerError(MarketError, ValueError):
    """The event log is inconsistent (an event refers to an unknown organization or round)."""


class ParametersError(MarketError):
    """The contract's parameters cannot be read or are not what the protocol expects."""
