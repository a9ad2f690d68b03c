"""The learning core's errors: one root, mixed with the builtin each one refines.

The organization runtime catches `AgentError` to tell a learner's *expected* refusal (a bundle it
cannot use) from a bug, which must surface instead of turning into a report on chain.
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error raised by `agent`."""


class AgentValueError(AgentError, ValueError):
    """An argument or a configuration value is invalid."""
