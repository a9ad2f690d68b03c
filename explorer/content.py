"""The explorer's read-only view of a content store, with a cache and a circuit breaker.

Content is addressed by CID, so a verified object never changes: hits are cached for good (bounded).
Misses are not cached, because the object may be added later. When the store cannot be reached the
first failure opens a breaker for `retry_after_s`, so a page with twenty CIDs costs one timeout,
not twenty.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from exchange.cid import cid_text
from exchange.errors import (
    CidMismatchError,
    ExchangeError,
    FormatError,
    NotFoundError,
    OversizedError,
    StoreUnavailableError,
)
from exchange.store import ContentStore
from exchange.stores import is_ipfs_api, open_store
from explorer.models import Document
from market.documents import DecisionRecord, ProfileDoc

MAX_DOCUMENT_BYTES = 1 << 20  # profiles and decision records are small; refuse anything bigger


class ReadableStore(Protocol):
    """The part of `exchange.store.ContentStore` the explorer uses: it only reads."""

    def get(self, cid: str, *, max_bytes: int = ...) -> bytes: ...

    def has(self, cid: str) -> bool: ...


def open_readonly_store(spec: str | None, timeout_s: float = 3.0) -> ReadableStore | None:
    """A store from a CLI value (`exchange.stores.open_store`), opened for reading only.

    An IPFS API gets no retries (a page must not wait). A directory that does not exist yet is not
    created (the explorer only reads): it is opened lazily and reported as unreachable until it appears.
    """
    if not spec:
        return None
    if is_ipfs_api(spec) or (Path(spec) / "objects").is_dir():
        return open_store(spec, timeout_s=timeout_s, retries=0, has_timeout_s=min(1.0, timeout_s))
    return _LazyLocalStore(Path(spec))


class _LazyLocalStore:
    """Opens `exchange.local.LocalStore` only once its directory exists (it would create it)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cid_version = 1
        self._store: ContentStore | None = None

    def __repr__(self) -> str:
        return f"local directory {self.root}"

    def _open(self) -> ContentStore:
        if self._store is None:
            if not (self.root / "objects").is_dir():
                raise StoreUnavailableError(f"no content store at {self.root}")
            from exchange.local import LocalStore

            self._store = LocalStore(self.root)
        return self._store

    def get(self, cid: str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
        return self._open().get(cid, max_bytes=max_bytes)

    def has(self, cid: str) -> bool:
        return self._open().has(cid)


def cid_text_or_none(binary: bytes) -> str | None:
    """The canonical text of a binary CID from an event, or None if it is not a CID we read."""
    try:
        return cid_text(binary)
    except ExchangeError:
        return None


Decoder = Callable[[bytes], tuple[str, Any]]


def decode_profile(data: bytes) -> tuple[str, Any]:
    return ProfileDoc.FORMAT, ProfileDoc.from_bytes(data, max_bytes=MAX_DOCUMENT_BYTES).to_json()


def decode_decision(data: bytes) -> tuple[str, Any]:
    return DecisionRecord.FORMAT, DecisionRecord.from_bytes(data, max_bytes=MAX_DOCUMENT_BYTES).to_json()


class ContentReader:
    """Fetch-and-decode with caching; thread-safe (uvicorn serves requests from a thread pool)."""

    def __init__(
        self,
        store: Any,
        *,
        retry_after_s: float = 15.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.retry_after_s = retry_after_s
        self.cache_size = cache_size
        self.clock = clock
        self._hits: OrderedDict[tuple[str, str], Document] = OrderedDict()
        self._down_until = 0.0
        self._down_reason = ""
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return self.store is not None

    def describe(self) -> str:
        return repr(self.store) if self.store is not None else "none configured"

    def status(self) -> tuple[bool, str]:
        """(reachable, detail) as last seen."""
        if self.store is None:
            return False, "no content store configured (--store): documents are not shown"
        with self._lock:
            if self.clock() < self._down_until:
                return False, self._down_reason
        return True, "reachable"

    def probe(self) -> None:
        """Check the store answers (an IPFS node's version, a local directory's existence), so an
        unreachable store is reported even when there is nothing to fetch yet."""
        if self.store is None:
            return
        with self._lock:
            if self.clock() < self._down_until:
                return
        check = getattr(self.store, "version", None) or getattr(self.store, "_open", None)
        if check is None:
            return
        try:
            check()
        except (ExchangeError, OSError) as error:
            with self._lock:
                self._down_until = self.clock() + self.retry_after_s
                self._down_reason = f"content store unreachable: {error}"

    def fetch(self, cid: str, kind: str, decoder: Decoder) -> Document:
        """The document at `cid`, decoded with `decoder`; never raises for store or format problems."""
        key = (cid, kind)
        with self._lock:
            cached = self._hits.get(key)
            if cached is not None:
                self._hits.move_to_end(key)
                return cached
            if self.store is None:
                return Document(cid, "unavailable", detail="no content store configured")
            if self.clock() < self._down_until:
                return Document(cid, "unavailable", detail=self._down_reason)
        try:
            data: bytes = self.store.get(cid, max_bytes=MAX_DOCUMENT_BYTES)
        except NotFoundError:
            return Document(cid, "missing", detail="not in the content store")
        except CidMismatchError as error:
            return Document(cid, "invalid", detail=f"the store returned bytes that do not match: {error}")
        except OversizedError as error:
            return Document(cid, "invalid", detail=str(error))
        except (StoreUnavailableError, OSError) as error:
            reason = f"content store unreachable: {error}"
            with self._lock:
                self._down_until = self.clock() + self.retry_after_s
                self._down_reason = reason
            return Document(cid, "unavailable", detail=reason)
        except ExchangeError as error:
            return Document(cid, "unavailable", detail=f"content store error: {error}")
        document = _decode(cid, data, decoder)
        with self._lock:
            self._hits[key] = document
            while len(self._hits) > self.cache_size:
                self._hits.popitem(last=False)
        return document


def _decode(cid: str, data: bytes, decoder: Decoder) -> Document:
    try:
        kind, content = decoder(data)
        return Document(cid, "decoded", kind=kind, content=content)
    except (FormatError, ValueError, TypeError) as error:
        try:
            content = json.loads(data)
        except ValueError:
            return Document(cid, "invalid", detail=f"not a knexa document ({error}); {len(data)} bytes")
        return Document(cid, "unrecognised", content=content, detail=f"not a knexa document: {error}")
