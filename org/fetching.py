"""What a student does when it cannot get or use a bundle: wait, refuse, or report neutrally.

Three kinds of failure, three outcomes, so that a participant is never punished for someone
else's fault:

- **The store did not deliver** (`NotFoundError` while content propagates, a timeout, the node down,
  an API error, bytes that do not hash to their CID): not the teacher's fault. The runtime tries
  again at every step until `give_up_blocks` before the deadline, then reports the *neutral* gain 0
  with a public ``knexa.unavailable`` note. Gain 0 is what the contract already treats as "no
  evidence": the teacher's reputation signal is WAD/2, exactly as when no gain is reported, it earns
  no credits, and the student, which did its part, is not slashed for a missing report.
- **The bundle itself is defective** (it does not open, is sealed to someone else, signed by
  another teacher, malformed, oversized): a verified defect, disputed with evidence
  (`market.disputes`). One the arbiter cannot check (the learner refuses it, e.g. for prompts
  outside the transfer set) is reported with the worst gain -1 and a public ``knexa.rejection``
  note: the student's own reward, which never lowers the teacher.
- **The learner failed for a reason it did not type** (a bug, an exhausted device): no evidence
  against the teacher either, so it is reported like "unavailable" (gain 0, a
  ``knexa.learner-failure`` note) and logged with its traceback; the agent keeps running.
"""

from __future__ import annotations

import json

from exchange.errors import CidMismatchError, StoreError

#: Stop waiting for an undelivered bundle this many blocks before the round's deadline, so that
#: the neutral report is still mined in time.
DEFAULT_GIVE_UP_BLOCKS = 3
NEUTRAL_GAIN = 0.0
UNAVAILABLE_NOTE = "knexa.unavailable"
LEARNER_FAILURE_NOTE = "knexa.learner-failure"
REJECTION_NOTE = "knexa.rejection"


def is_delivery_failure(error: BaseException) -> bool:
    """Whether `error` says the store failed to deliver, as opposed to the content being bad.

    Every `StoreError` (not found, unavailable, timeout, API error) and a CID mismatch (the store
    returned bytes that are not the teacher's: content addressing makes that the store's fault).
    An `OversizedError` is a property of the content the teacher published, so it is a defect.
    """
    return isinstance(error, StoreError | CidMismatchError)


def keep_waiting(last_block: int, deadline_block: int, give_up_blocks: int = DEFAULT_GIVE_UP_BLOCKS) -> bool:
    """Whether there is still time to retry before the neutral report must be sent."""
    return last_block < deadline_block - give_up_blocks


def note(kind: str, round_id: int, teacher: str, error: BaseException) -> bytes:
    """A public note explaining a report (its CID is reported in place of an adapter commitment)."""
    reason = f"{type(error).__name__}: {error}"
    document = {"kind": kind, "round": round_id, "teacher": teacher, "reason": reason}
    return json.dumps(document, sort_keys=True).encode()


__all__ = [
    "DEFAULT_GIVE_UP_BLOCKS",
    "LEARNER_FAILURE_NOTE",
    "NEUTRAL_GAIN",
    "REJECTION_NOTE",
    "UNAVAILABLE_NOTE",
    "is_delivery_failure",
    "keep_waiting",
    "note",
]
