"""The runtime's progress on disk, so that a restarted agent resumes without repeating itself.

The chain is the judge of what was done (a bundle published, a gain reported); this file keeps
what the chain cannot: work products made but not yet sent (a measured gain and the adapter
commitment). It is keyed by the chain it belongs to (`chain`: chain id, market address, deployment
block hash), so a reset and redeployed chain never sees another chain's results. Writes are atomic
(temp file + rename).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PendingReport:
    """A student's result, kept until `reportGain` is mined."""

    teacher: str
    gain: float
    adapter_cid: str
    note: str = ""
    # What the learner measured (the organization's own log): the Eq. 3 inputs and the Pass@1 change.
    measured: dict[str, float] | None = None


@dataclass
class RuntimeState:
    reports: dict[str, PendingReport] = field(default_factory=dict)  # round id (text) -> result
    profile_round: int = 0  # the last round after which the profile was refreshed
    rejected: dict[str, str] = field(default_factory=dict)  # round id -> why its bundle was refused
    nothing_to_teach: list[str] = field(default_factory=list)  # "round:student" the learner had nothing for
    neutral: dict[str, str] = field(default_factory=dict)  # round id -> why a neutral gain was reported
    disputed: dict[str, str] = field(default_factory=dict)  # round id -> CID of the dispute evidence
    chain: dict[str, Any] | None = None  # the `market.follower.ChainKey` all of the above belongs to

    @classmethod
    def load(cls, path: Path) -> RuntimeState:
        if not path.exists():
            return cls()
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        reports = {key: PendingReport(**value) for key, value in data.get("reports", {}).items()}
        return cls(
            reports=reports,
            profile_round=int(data.get("profile_round", 0)),
            rejected=dict(data.get("rejected", {})),
            nothing_to_teach=list(data.get("nothing_to_teach", [])),
            neutral=dict(data.get("neutral", {})),
            disputed=dict(data.get("disputed", {})),
            chain=data.get("chain"),
        )

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, path)
