"""The problem categories organizations declare (the axes of every category histogram)."""

from __future__ import annotations

from collections.abc import Sequence

from market.errors import MarketValueError

#: The default, fixed and ordered list of problem categories (code-generation tasks). The agents'
#: code suite generates problems of exactly these categories.
DEFAULT_CATEGORIES: tuple[str, ...] = (
    "strings",
    "arithmetic",
    "lists",
    "dicts",
    "conditionals",
    "loops",
    "recursion",
    "sorting",
)


def check_categories(categories: Sequence[str]) -> tuple[str, ...]:
    """Validate an ordered list of category names (non-empty, unique, non-empty strings)."""
    cats = tuple(categories)
    if not cats:
        raise MarketValueError("categories must not be empty")
    if any(not isinstance(c, str) or not c for c in cats):
        raise MarketValueError("every category must be a non-empty string")
    if len(set(cats)) != len(cats):
        raise MarketValueError("categories must be unique")
    return cats
