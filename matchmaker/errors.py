"""The matchmaker's errors: one root, mixed with the builtin each one refines."""

from __future__ import annotations


class MatchmakerError(Exception):
    """Root of every error raised by `matchmaker`."""


class FeatureError(MatchmakerError, ValueError):
    """An organization's features are outside their declared bounds."""


class InputError(MatchmakerError, ValueError):
    """A profile document cannot be turned into features for this policy."""


class PolicyError(MatchmakerError, ValueError):
    """Policy parameters are invalid, or a policy was asked for something it cannot do."""


class ConfigurationError(MatchmakerError, ValueError):
    """The matchmaker service was set up without what it needs (e.g. an account to act with)."""
