"""`LocalStore`: a content store in a plain directory, the embedded default (no daemon needed).

Layout under the root directory:

    objects/<last two CID characters>/<cid>   whole objects, read-only once written
    pins/<cid>                                 an empty file per pinned object
    tmp/                                       partial writes, renamed into place when complete

Objects are whole files rather than blocks: the CID is computed with the same UnixFS importer as
`ipfs add`, so the same bytes get the same CID here and on an IPFS node. Writes go to `tmp/` and are
renamed into place (atomic on POSIX), so a crash never leaves a half-written object under a CID, and
every read re-verifies the bytes, so a damaged file is reported instead of returned.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from exchange.cid import DEFAULT_CID_VERSION, CidVersion, cid_of, normalize_cid, verify_content
from exchange.errors import NotFoundError, OversizedError, StoreError
from exchange.store import DEFAULT_MAX_BYTES
from exchange.unixfs import UnixFsImporter

_COPY_BLOCK = 1 << 20


class LocalStore:
    """A directory of content-addressed objects. See the module docstring for the layout."""

    def __init__(self, root: Path | str, cid_version: CidVersion = DEFAULT_CID_VERSION) -> None:
        self.root = Path(root)
        self.cid_version: CidVersion = cid_version
        for sub in ("objects", "pins", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r}, cid_version={self.cid_version})"

    # --- paths --------------------------------------------------------------------------------

    def _object_path(self, cid: str) -> Path:
        return self.root / "objects" / cid[-2:] / cid

    def _pin_path(self, cid: str) -> Path:
        return self.root / "pins" / cid

    # --- writing ------------------------------------------------------------------------------

    def put(self, data: bytes, *, pin: bool = True, expected_cid: str | None = None) -> str:
        if expected_cid is not None:
            # Checked before anything is written: bad bytes never reach the store.
            cid = verify_content(data, expected_cid)
        else:
            cid = cid_of(data, self.cid_version)
        self._write(cid, data, pin)
        return cid

    def put_file(self, path: Path, *, pin: bool = True) -> str:
        """Copy a file in while hashing it; the copy is renamed into place under its CID."""
        importer = UnixFsImporter(self.cid_version)
        with self._temporary() as (handle, temp_path), Path(path).open("rb") as source:
            while block := source.read(_COPY_BLOCK):
                importer.update(block)
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
            cid = str(importer.finish().cid)
            self._commit(temp_path, cid)
        if pin:
            self.pin(cid)
        return cid

    def _write(self, cid: str, data: bytes, pin: bool) -> None:
        path = self._object_path(cid)
        # An object already held is not rewritten; one of the wrong size (damaged) is replaced.
        if not path.is_file() or path.stat().st_size != len(data):
            with self._temporary() as (handle, temp_path):
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                self._commit(temp_path, cid)
        if pin:
            self.pin(cid)

    @contextlib.contextmanager
    def _temporary(self) -> Iterator[tuple[BinaryIO, Path]]:
        descriptor, name = tempfile.mkstemp(dir=self.root / "tmp", prefix="put-")
        temp_path = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                yield handle, temp_path
        finally:
            temp_path.unlink(missing_ok=True)  # already renamed away on success

    def _commit(self, temp_path: Path, cid: str) -> None:
        target = self._object_path(cid)
        target.parent.mkdir(exist_ok=True)
        os.chmod(temp_path, 0o444)
        os.replace(temp_path, target)

    # --- reading ------------------------------------------------------------------------------

    def get(self, cid: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        key = normalize_cid(cid)
        path = self._object_path(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"{key} is not in {self.root}") from None
        if size > max_bytes:
            raise OversizedError(f"object {key}", size, max_bytes)
        data = path.read_bytes()
        verify_content(data, key)  # a damaged file raises CidMismatchError and stays for inspection
        return data

    def has(self, cid: str) -> bool:
        return self._object_path(normalize_cid(cid)).is_file()

    def cids(self) -> list[str]:
        """Every CID held, sorted."""
        return sorted(path.name for path in (self.root / "objects").glob("*/*") if path.is_file())

    # --- pins ---------------------------------------------------------------------------------

    def pin(self, cid: str) -> None:
        key = normalize_cid(cid)
        if not self.has(key):
            raise NotFoundError(f"cannot pin {key}: not in {self.root}")
        self._pin_path(key).touch()

    def unpin(self, cid: str) -> None:
        key = normalize_cid(cid)
        try:
            self._pin_path(key).unlink()
        except FileNotFoundError:
            raise StoreError(f"{key} is not pinned") from None

    def pins(self) -> set[str]:
        return {path.name for path in (self.root / "pins").iterdir()}

    def gc(self) -> list[str]:
        """Delete every object that is not pinned; return the CIDs removed."""
        pinned = self.pins()
        removed = []
        for cid in self.cids():
            if cid not in pinned:
                self._object_path(cid).unlink(missing_ok=True)
                removed.append(cid)
        return removed
