"""`IpfsStore`: a typed client of the Kubo RPC API (`/api/v0/...`) over httpx.

Works against Kubo and js-ipfs alike; the differences it papers over (docs/toolchain.md):

- js-ipfs answers HTTP 500 to a multipart part without a Content-Type, so every part carries one;
- js-ipfs prints CIDv1 in base58btc unless `cid-base=base32` is passed (and refuses that option
  when a CIDv0 is in the answer), so CIDs are passed with it where safe and normalized here anyway;
- `cat` (and `block/stat`) of a CID the node does not hold waits for the network forever on an
  offline node, so every call has a client timeout, and a `get` that sees no byte within it
  reports `NotFoundError`.

`ipfshttpclient` is not used: it is unmaintained since 2021 and refuses current Kubo releases.

Every `put` also computes the CID locally and checks the node's answer against it, and every `get`
verifies the bytes while they stream in, so the node is never trusted blindly.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx

from exchange.cid import (
    DEFAULT_CID_VERSION,
    CidVersion,
    cid_of,
    cid_of_file,
    normalize_cid,
    parse_cid,
    verify_content,
    verify_file,
)
from exchange.errors import (
    IpfsApiError,
    NotFoundError,
    OversizedError,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from exchange.store import DEFAULT_MAX_BYTES

DEFAULT_API_URL = "http://127.0.0.1:5001"
_STREAM_BLOCK = 1 << 20
_RETRY_STATUS = frozenset({502, 503, 504})

T = TypeVar("T")


@dataclass(frozen=True)
class NodeVersion:
    version: str
    agent: str  # "kubo" or "js-ipfs" (from the version answer's shape)


@dataclass(frozen=True)
class NodeIdentity:
    peer_id: str
    agent_version: str
    addresses: tuple[str, ...]


class IpfsStore:
    """A content store backed by an IPFS node's RPC API.

    `timeout_s` bounds each wait for the node (connect, and each read while streaming: a large
    object keeps flowing, an unknown CID produces nothing and times out). Calls that fail to
    connect, or get 502/503/504, are retried `retries` times with exponential backoff and jitter;
    every call here is idempotent (adding the same bytes twice gives the same CID).
    """

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        *,
        cid_version: CidVersion = DEFAULT_CID_VERSION,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.1,
        has_timeout_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.cid_version: CidVersion = cid_version
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.has_timeout_s = has_timeout_s
        self._client = httpx.Client(
            base_url=f"{self.api_url}/api/v0/",
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            trust_env=False,  # loopback or an explicit URL: never route through an env proxy
        )

    def __repr__(self) -> str:
        return f"IpfsStore({self.api_url!r}, cid_version={self.cid_version})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IpfsStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- transport ----------------------------------------------------------------------------

    def _with_retries(self, endpoint: str, attempt: Callable[[], T]) -> T:
        delay = self.backoff_s
        for remaining in range(self.retries, -1, -1):
            try:
                return attempt()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as error:
                if remaining == 0:
                    raise StoreUnavailableError(
                        f"IPFS node at {self.api_url} does not answer ({endpoint}): {error}"
                    ) from None
            except IpfsApiError as error:
                if error.status not in _RETRY_STATUS or remaining == 0:
                    raise
            time.sleep(delay * (1 + random.random() / 2))
            delay *= 2
        raise AssertionError("unreachable")

    def _call(
        self,
        endpoint: str,
        params: dict[str, str] | None = None,
        *,
        timeout_s: float | None = None,
        files: Callable[[], dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """POST an RPC call; return its answer as a list of JSON objects (some endpoints stream lines).

        `files` is a factory so that a retry sends a fresh multipart body (a file from its start).
        """
        wait_s = timeout_s if timeout_s is not None else self.timeout_s

        def attempt() -> list[dict[str, Any]]:
            try:
                response = self._client.post(
                    endpoint,
                    params=params,
                    files=files() if files is not None else None,
                    timeout=httpx.Timeout(wait_s, connect=min(wait_s, self.timeout_s)),
                )
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
                raise StoreTimeoutError(
                    f"IPFS {endpoint} got no answer from {self.api_url} within {wait_s} s"
                ) from None
            _raise_for_status(endpoint, response)
            return _json_lines(endpoint, response.text)

        return self._with_retries(endpoint, attempt)

    # --- node ---------------------------------------------------------------------------------

    def version(self) -> NodeVersion:
        answer = self._call("version")[0]
        agent = "kubo" if "Golang" in answer or "System" in answer else "js-ipfs"
        return NodeVersion(version=str(answer.get("Version", "")), agent=agent)

    def id(self) -> NodeIdentity:
        answer = self._call("id")[0]
        return NodeIdentity(
            peer_id=str(answer.get("ID", "")),
            agent_version=str(answer.get("AgentVersion", "")),
            addresses=tuple(str(address) for address in answer.get("Addresses") or ()),
        )

    def repo_gc(self) -> None:
        """Remove unpinned blocks from the node's repo."""
        self._call("repo/gc", timeout_s=max(self.timeout_s, 60.0))

    # --- writing ------------------------------------------------------------------------------

    def _add(self, content: Callable[[], bytes | IO[bytes]], pin: bool, version: CidVersion, cid: str) -> str:
        """Send content to `add` and check that the node's CID is the one computed here."""
        params = {
            "cid-version": str(version),
            "raw-leaves": "true" if version == 1 else "false",
            "pin": "true" if pin else "false",
            "progress": "false",
        }
        if version == 1:
            params["cid-base"] = "base32"  # js-ipfs would answer base58btc; it rejects base32 for v0
        answers = self._call(
            "add",
            params,
            timeout_s=max(self.timeout_s, 120.0),  # the answer comes once the node has imported it all
            files=lambda: {"file": ("blob", content(), "application/octet-stream")},
        )
        hashes = [answer["Hash"] for answer in answers if "Hash" in answer]
        if not hashes:
            raise IpfsApiError("add", 200, f"no Hash in the answer: {answers!r}")
        got = normalize_cid(str(hashes[-1]))
        if got != cid:
            raise StoreError(f"IPFS node computed {got} for content whose CID is {cid}")
        return got

    def put(self, data: bytes, *, pin: bool = True, expected_cid: str | None = None) -> str:
        if expected_cid is None:
            version, cid = self.cid_version, cid_of(data, self.cid_version)
        else:
            # Checked before anything reaches the node: bad bytes are never added.
            cid = verify_content(data, expected_cid)
            version = 0 if parse_cid(cid).version == 0 else 1
        return self._add(lambda: data, pin, version, cid)

    def put_file(self, path: Path, *, pin: bool = True) -> str:
        """Stream a file to the node (httpx reads it in blocks); the CID is computed locally first."""
        source = Path(path)
        cid = cid_of_file(source, self.cid_version)
        with contextlib.ExitStack() as stack:

            def reopen() -> IO[bytes]:  # each attempt sends the file from its start
                return stack.enter_context(source.open("rb"))

            return self._add(reopen, pin, self.cid_version, cid)

    # --- reading ------------------------------------------------------------------------------

    def _stream_cat(self, key: str, max_bytes: int) -> Iterator[bytes]:
        """Yield the object's bytes as they arrive, stopping at `max_bytes`. Callers verify the CID."""
        received = 0
        try:
            with self._client.stream("POST", "cat", params={"arg": key}) as response:
                if response.status_code != 200:
                    response.read()
                    _raise_for_status("cat", response)
                for block in response.iter_bytes(_STREAM_BLOCK):
                    received += len(block)
                    if received > max_bytes:
                        raise OversizedError(f"object {key} (bytes so far)", received, max_bytes)
                    yield block
        except httpx.ReadTimeout:
            if received == 0:
                raise NotFoundError(
                    f"{key} not found: the node at {self.api_url} sent nothing within {self.timeout_s} s"
                ) from None
            raise StoreTimeoutError(f"IPFS cat {key} stalled after {received} bytes") from None

    def get(self, cid: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        key = normalize_cid(cid)

        def attempt() -> bytes:
            return b"".join(self._stream_cat(key, max_bytes))

        data = self._with_retries("cat", attempt)
        verify_content(data, key)
        return data

    def get_file(self, cid: str, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """Stream an object into `path`; the file appears only once its bytes matched the CID."""
        key = normalize_cid(cid)
        target = Path(path)

        def attempt() -> None:
            descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    for block in self._stream_cat(key, max_bytes):
                        handle.write(block)
                verify_file(Path(name), key)
                os.replace(name, target)
            finally:
                Path(name).unlink(missing_ok=True)

        self._with_retries("cat", attempt)

    def has(self, cid: str) -> bool:
        """Whether the node holds the root block now, without asking the network.

        Kubo answers `block/stat?offline=true` at once; js-ipfs ignores `offline` and waits, so
        no answer within `has_timeout_s` counts as "not held".
        """
        key = normalize_cid(cid)
        try:
            self._call("block/stat", {"arg": key, "offline": "true"}, timeout_s=self.has_timeout_s)
        except StoreTimeoutError:
            return False
        except IpfsApiError as error:
            if error.status == 500 and "not found" in error.message.lower():
                return False
            raise
        return True

    # --- pins ---------------------------------------------------------------------------------

    def pin(self, cid: str) -> None:
        key = normalize_cid(cid)
        try:
            self._call("pin/add", {"arg": key}, timeout_s=self.has_timeout_s * 5)
        except StoreTimeoutError:
            raise NotFoundError(f"cannot pin {key}: the node does not hold it") from None

    def unpin(self, cid: str) -> None:
        key = normalize_cid(cid)
        try:
            self._call("pin/rm", {"arg": key})
        except IpfsApiError as error:
            if "not pinned" in error.message:
                raise StoreError(f"{key} is not pinned") from None
            raise

    def pins(self) -> set[str]:
        answers = self._call("pin/ls", {"type": "recursive"})
        keys: set[str] = set()
        for answer in answers:
            if isinstance(answer.get("Keys"), dict):  # Kubo and js-ipfs: one object with all keys
                keys.update(answer["Keys"])
            elif "Cid" in answer:  # streamed form
                keys.add(str(answer["Cid"]))
        return {normalize_cid(key) for key in keys}


def _raise_for_status(endpoint: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    message = response.text.strip()
    with contextlib.suppress(ValueError):
        message = str(json.loads(message).get("Message", message))
    raise IpfsApiError(endpoint, response.status_code, message[:500])


def _json_lines(endpoint: str, text: str) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise IpfsApiError(endpoint, 200, f"answer is not JSON: {line[:200]!r}") from None
        if isinstance(value, dict):
            answers.append(value)
    return answers
