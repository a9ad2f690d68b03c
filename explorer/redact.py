"""Credentials out of every URL the explorer shows.

Hosted JSON-RPC and IPFS endpoints carry API keys in the URL: as user info
(`https://user:secret@host`), in the query (`?apikey=...`, `?token=...`), or as a path segment
(`https://mainnet.infura.io/v3/<key>`, `https://eth-mainnet.g.alchemy.com/v2/<key>`). The explorer
is public, so a URL it displays (in the summary, in an error detail, in the store description) keeps
only its scheme, host, port and the path segments that cannot be secrets.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"

# A query parameter whose name contains one of these (case-insensitively) holds a credential.
_SECRET_QUERY_WORDS = ("key", "token", "auth", "secret", "pass", "jwt", "sig", "credential", "session")
# A path segment that looks like a key: long and made of key characters (hex, base58/64, UUIDs).
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{16,}$")
# Segments that name an API version (`v2`, `v3`, `api`): the segment after one of them is often the key.
_VERSION_SEGMENT = re.compile(r"^(v\d+|api|rpc|ws|http|key|keys)$", re.I)
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>)\]]+")
# urllib3 names the path alone: "Max retries exceeded with url: /v3/<key> (Caused by ...)".
_PATH_IN_TEXT = re.compile(r"(?<=url: )/[^\s'\"<>)\]]*")


def _is_secret_key(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_QUERY_WORDS)


def _redact_path(path: str) -> str:
    segments = path.split("/")
    out = []
    for index, segment in enumerate(segments):
        after_version = index > 0 and bool(_VERSION_SEGMENT.match(segments[index - 1]))
        if segment and (_KEY_SEGMENT.match(segment) or (after_version and len(segment) >= 8)):
            out.append(REDACTED)
        else:
            out.append(segment)
    return "/".join(out)


def redact_url(url: str) -> str:
    """`url` without user info, secret query values or key-like path segments.

    Anything that does not parse as a URL with a host is returned fully redacted, rather than
    risking a leak through a form this function does not understand.
    """
    try:
        parts: SplitResult = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED if url else url
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"{REDACTED}@{netloc}"
    query = urlencode(
        [
            (name, REDACTED if _is_secret_key(name) or _KEY_SEGMENT.match(value) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, _redact_path(parts.path), query, ""))


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (error messages quote the URL they could not reach)."""

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        trail = len(url) - len(url.rstrip(".,:;!?"))  # the sentence's punctuation is not the URL's
        return redact_url(url[: len(url) - trail]) + url[len(url) - trail :]

    def path(match: re.Match[str]) -> str:
        return redact_url("http://host" + match.group(0)).removeprefix("http://host")

    return _PATH_IN_TEXT.sub(path, _URL_IN_TEXT.sub(one, text))
