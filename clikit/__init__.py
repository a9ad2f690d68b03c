"""The command-line toolkit every knexa command group shares: options, output, errors, exit codes.

It sits below every other package (it imports none of them) because the lowest command groups,
`knexa chain` and `knexa exchange`, use it too. Each package registers its own commands with it;
the top CLI (`knexa.cli`) only mounts the groups.
"""

from clikit.defaults import (
    DEFAULT_MANIFEST,
    DEFAULT_RPC_URL,
    DEFAULT_STATE_DIR,
    DEFAULT_STORE,
    MANIFEST_ENV,
    RPC_ENV,
    STORE_ENV,
)
from clikit.exits import EXIT_CODES_HELP, ExitCode
from clikit.options import json_option, manifest_option, rpc_option, store_option
from clikit.output import emit, fail, print_json

__all__ = [
    "DEFAULT_MANIFEST",
    "DEFAULT_RPC_URL",
    "DEFAULT_STATE_DIR",
    "DEFAULT_STORE",
    "EXIT_CODES_HELP",
    "MANIFEST_ENV",
    "RPC_ENV",
    "STORE_ENV",
    "ExitCode",
    "emit",
    "fail",
    "json_option",
    "manifest_option",
    "print_json",
    "rpc_option",
    "store_option",
]
