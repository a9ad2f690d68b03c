"""Typed errors of the exchange package.

Every failure a caller may want to react to has its own class; all derive from `ExchangeError`,
so `except ExchangeError` catches anything this package raises on bad input or a bad store.
An operation that raises one of these has not changed any store.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Base of every error raised by the exchange package."""


# --- content addressing -------------------------------------------------------------------------


class InvalidCidError(ExchangeError, ValueError):
    """A string or bytes value is not a CID this package understands."""


class CidMismatchError(ExchangeError):
    """Bytes do not hash to the CID they were fetched or offered under (truncated or tampered)."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"content does not match its CID: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


# --- stores -------------------------------------------------------------------------------------


class StoreError(ExchangeError):
    """A content store failed to do what was asked."""


class NotFoundError(StoreError, KeyError):
    """The store does not hold the object (or, for an offline IPFS node, could not find it in time)."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the plain message
        return str(self.args[0]) if self.args else ""


class StoreUnavailableError(StoreError):
    """The store cannot be reached (the IPFS node is down or does not answer)."""


class StoreTimeoutError(StoreUnavailableError):
    """The store did not answer within the client timeout."""


class IpfsApiError(StoreError):
    """The IPFS node answered the RPC call with an error."""

    def __init__(self, endpoint: str, status: int, message: str) -> None:
        super().__init__(f"IPFS {endpoint} failed (HTTP {status}): {message}")
        self.endpoint = endpoint
        self.status = status
        self.message = message


# --- formats ------------------------------------------------------------------------------------


class FormatError(ExchangeError, ValueError):
    """A document or bundle does not follow its format."""


class UnknownFormatError(FormatError):
    """The format name or version is not one this build can read."""


class SchemaError(FormatError):
    """A field is missing, has the wrong type, or breaks a rule of the schema."""


class NonCanonicalError(FormatError):
    """A JSON document parses but is not in canonical form, so its CID would not be the canonical one."""


class NonFiniteError(FormatError):
    """A number is NaN or infinite."""


class OutOfBoundsError(SchemaError):
    """A finite number lies outside the bounds its field declares (or a histogram does not sum to 1)."""


class ShapeError(FormatError):
    """Tensors have inconsistent shapes or dtypes."""


class UnsafePayloadError(FormatError):
    """The payload is a pickle (or a torch zip archive that carries one); it is never deserialised."""


class OversizedError(ExchangeError):
    """An object is larger than the configured limit."""

    def __init__(self, what: str, size: int, limit: int, unit: str = "bytes") -> None:
        super().__init__(f"{what} is {size} {unit}, over the limit of {limit} {unit}")
        self.size = size
        self.limit = limit


# --- sealing ------------------------------------------------------------------------------------


class SealError(ExchangeError):
    """A sealed bundle cannot be opened or trusted."""


class DecryptionError(SealError):
    """The envelope does not decrypt with this key: wrong recipient, or the ciphertext was altered."""


class WrongRecipientError(DecryptionError):
    """The envelope is sealed to another public key than the one of the given private key."""


class WrongSignerError(SealError):
    """The bundle was signed by someone other than the expected (on-chain) teacher."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"bundle signed by {actual}, expected teacher {expected}")
        self.expected = expected
        self.actual = actual


class HeaderMismatchError(SealError):
    """The envelope names another round, teacher or student than the one expected."""
