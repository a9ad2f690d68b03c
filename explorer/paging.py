"""The explorer's paging and documented responses (the shared part is `clikit.http`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from clikit.http import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NOT_FOUND,
    CursorQuery,
    ErrorDetail,
    LimitQuery,
    Page,
    StrictNonNegativeInt,
    page_of,
)

__all__ = [
    "CHAIN_UNAVAILABLE",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "NOT_FOUND",
    "CursorQuery",
    "ErrorDetail",
    "LimitQuery",
    "Page",
    "StrictNonNegativeInt",
    "UnavailableBody",
    "page_of",
]


class UnavailableBody(BaseModel):
    """Why the market cannot be read right now (no manifest, node down, chain reset...)."""

    error: str
    title: str
    detail: str


CHAIN_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": UnavailableBody, "description": "the market cannot be read right now"}
}
