"""What the matchmaker may know about an organization: its sanitised features.

`OrgFeatures` is the *only* thing the matchmaker learns about an organization: the model family
and a coarse size bucket, the LoRA rank, the recent validation Pass@1 and its change, a
differentially private histogram of the organization's problem categories (released by the
organization itself, see `market.privacy`), and the reputation and credits that the chain holds.
No raw data, no weights, no per-problem information.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from market.categories import DEFAULT_CATEGORIES, check_categories
from market.checks import check_int, check_real
from matchmaker.errors import FeatureError

__all__ = ["DEFAULT_CATEGORIES", "OrgFeatures", "check_categories"]

_MAX_FAMILY_LEN = 64
_HIST_SUM_TOL = 1e-6


@dataclass(frozen=True)
class OrgFeatures:
    """The sanitised profile of one organization, as the matchmaker sees it.

    ``category_hist`` is aligned with ``categories`` and sums to 1 (it is the DP-released,
    post-processed histogram). ``reputation`` (in [0, 1]) and ``credits`` (>= 0) come from the
    chain, not from the organization. Construction validates every field and raises
    ``FeatureError`` (a ``ValueError``) with the offending field's name.
    """

    family: str
    size_bucket: int
    lora_rank: int
    pass1: float
    pass1_delta: float
    categories: tuple[str, ...]
    category_hist: tuple[float, ...]
    reputation: float = 0.5
    credits: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not 0 < len(self.family) <= _MAX_FAMILY_LEN:
            raise FeatureError(f"family must be a non-empty string of at most {_MAX_FAMILY_LEN} characters")
        check_int("size_bucket", self.size_bucket, -16, 32)
        check_int("lora_rank", self.lora_rank, 1, 65536)
        object.__setattr__(self, "pass1", check_real("pass1", self.pass1, 0.0, 1.0))
        object.__setattr__(self, "pass1_delta", check_real("pass1_delta", self.pass1_delta, -1.0, 1.0))
        object.__setattr__(self, "categories", check_categories(self.categories))
        hist = tuple(check_real("category_hist entry", h, 0.0, 1.0) for h in self.category_hist)
        if len(hist) != len(self.categories):
            raise FeatureError(f"category_hist has {len(hist)} entries for {len(self.categories)} categories")
        if abs(math.fsum(hist) - 1.0) > _HIST_SUM_TOL:
            raise FeatureError(f"category_hist must sum to 1, sums to {math.fsum(hist)!r}")
        object.__setattr__(self, "category_hist", hist)
        object.__setattr__(self, "reputation", check_real("reputation", self.reputation, 0.0, 1.0))
        object.__setattr__(self, "credits", check_real("credits", self.credits, 0.0, math.inf))

    def with_chain(self, reputation: float, credits: float) -> OrgFeatures:
        """The same profile with reputation and credits as read from the chain."""
        return replace(self, reputation=reputation, credits=credits)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (floats round-trip exactly through ``json``)."""
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["category_hist"] = list(self.category_hist)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrgFeatures:
        """Strict inverse of `to_dict`: unknown or missing keys are errors."""
        expected = set(cls.__dataclass_fields__)
        keys = set(data)
        if keys != expected:
            raise FeatureError(
                f"OrgFeatures keys differ: missing {sorted(expected - keys)}, "
                f"unknown {sorted(keys - expected)}"
            )
        cats = data["categories"]
        hist = data["category_hist"]
        if not isinstance(cats, (list, tuple)) or not isinstance(hist, (list, tuple)):
            raise FeatureError("categories and category_hist must be lists")
        return cls(
            family=data["family"],
            size_bucket=data["size_bucket"],
            lora_rank=data["lora_rank"],
            pass1=data["pass1"],
            pass1_delta=data["pass1_delta"],
            categories=tuple(cats),
            category_hist=tuple(hist),
            reputation=data["reputation"],
            credits=data["credits"],
        )
