"""Where derived artifacts (tokenizers, pretrained base models) live: git-ignored, rebuildable."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """``$KNEXA_CACHE`` if set, else ``.knexa/cache`` under the repository root (git-ignored)."""
    env = os.environ.get("KNEXA_CACHE")
    path = Path(env) if env else REPO_ROOT / ".knexa" / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
