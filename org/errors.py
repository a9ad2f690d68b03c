"""The organization package's errors: one root, mixed with the builtin each one refines."""

from __future__ import annotations


class OrgError(Exception):
    """Root of every error raised by `org`."""


class OrgValueError(OrgError, ValueError):
    """A name, a setting or a file of the organization is invalid."""


class LearnerRefusedError(OrgError):
    """A learner's expected refusal: nothing to teach, or a bundle it cannot learn from.

    The runtime records it (a published "nothing", or a typed rejection of the bundle); any other
    exception from a learner is a bug and propagates.
    """
