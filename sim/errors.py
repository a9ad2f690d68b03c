"""The simulation package's errors: one root, mixed with the builtin each one refines."""

from __future__ import annotations


class SimError(Exception):
    """Root of every error raised by `sim`."""
