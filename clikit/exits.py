"""One table of exit codes for every knexa command (printed in `knexa --help` and the README)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    #: The command could not do what was asked: bad input, a refusal by the contract, a missing
    #: file, an unreachable chain or store. The message says which.
    FAILURE = 1
    #: The command line itself is wrong (unknown option, bad value): typer's own usage errors.
    USAGE = 2
    #: The matchmaker stopped: its own history does not replay under its declared policy.
    HALTED = 3
    #: An audit found a round that does not replay under the committed policy.
    MISMATCH = 4
    #: An audit could not check a round (a record or profile is missing from the store).
    UNVERIFIABLE = 5


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 failure (bad input, refused, unreachable); 2 usage; 3 matchmaker halted "
    "(its history does not replay); 4 audit mismatch; 5 audit unverifiable."
)
