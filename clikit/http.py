"""Paged lists, strict integer parameters and documented error bodies, shared by the HTTP APIs.

Every list endpoint answers one `Page`: at most `limit` items, oldest first, and a `next_cursor`
to pass back as `cursor` for the items after them (null on the last page). The lists are
append-only (events, rounds and registrations are never removed, except by a chain reset, which
starts the index afresh), so a cursor, which is the position after the page's last item, stays
valid while new items arrive at the end.

Integers in paths and queries are decimal digits only: `0.0`, `1e3`, `+1` or ` 1` are refused
(422), rather than read as the number a lax parser would guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from annotated_types import Ge, Le, Lt
from fastapi import Query
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_DIGITS = 30  # more than any block number or id a chain can reach
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")


def _digits_only(value: Any) -> Any:
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("expected a non-negative decimal integer (digits only)")
    return value


# The documents describe these parameters as what they are on the wire, strings of digits: JSON
# Schema's "integer" admits 3.0, which is exactly the spelling refused here.
DIGITS_PATTERN = rf"^[0-9]{{1,{MAX_DIGITS}}}$"
LIMIT_PATTERN = r"^(?:[1-9][0-9]?|[1-4][0-9][0-9]|500)$"
assert MAX_LIMIT == 500, "LIMIT_PATTERN spells out the limit"

StrictNonNegativeInt = Annotated[
    int,
    Ge(0),
    Lt(10**MAX_DIGITS),
    BeforeValidator(_digits_only),
    WithJsonSchema({"type": "string", "pattern": DIGITS_PATTERN, "description": "decimal digits"}),
]
"""A path or query integer: digits only (no sign, point, exponent or spaces)."""


class Page(BaseModel, Generic[T]):
    """One page of a list, oldest first."""

    items: list[T]
    next_cursor: str | None = Field(
        description="pass as `cursor` to get the items after this page; null when this is the last page"
    )
    total: int = Field(description="how many items the whole list holds now")


CursorQuery = Annotated[
    str | None,
    Query(
        description="the `next_cursor` of the previous page (opaque); omit for the first page",
        pattern=r"^[0-9]{1,18}$",
    ),
]
LimitQuery = Annotated[
    int,
    Ge(1),
    Le(MAX_LIMIT),
    BeforeValidator(_digits_only),
    WithJsonSchema({"type": "string", "pattern": LIMIT_PATTERN, "default": str(DEFAULT_LIMIT)}),
    Query(description=f"at most this many items (1 to {MAX_LIMIT}; default {DEFAULT_LIMIT})"),
]


def page_of(items: Sequence[T], cursor: str | None, limit: int) -> Page[T]:
    """The page of `items` that starts at `cursor` (a position; beyond the end: an empty last page)."""
    start = int(cursor) if cursor else 0
    chunk = list(items[start : start + limit])
    end = start + len(chunk)
    return Page[T](items=chunk, next_cursor=str(end) if end < len(items) else None, total=len(items))


class ErrorDetail(BaseModel):
    """What a 404 (and FastAPI's own errors) carry."""

    detail: str


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorDetail, "description": "no such item"}}
