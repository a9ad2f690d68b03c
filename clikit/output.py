"""Output and failure: results on stdout, messages on stderr, errors as one line (JSON under --json)."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from clikit.exits import ExitCode

_stderr = Console(stderr=True)
_stdout = Console()
_json_mode = False


def set_json_mode(enabled: bool) -> None:
    """Called when a command's `--json` is parsed (see `clikit.options.json_option`)."""
    global _json_mode
    _json_mode = enabled


def print_json(data: Any) -> None:
    """One JSON document on stdout (sorted keys; values JSON cannot hold are written as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def emit(json_output: bool, payload: dict[str, Any], text: str) -> None:
    """A result: `payload` as one JSON line under --json, else `text` for a person."""
    if json_output:
        sys.stdout.write(json.dumps(payload, sort_keys=True, default=str) + "\n")
    else:
        _stdout.print(text)


def fail(
    message: str | BaseException, *, json_output: bool | None = None, code: ExitCode = ExitCode.FAILURE
) -> NoReturn:
    """End the command with one clear line: `{"error": ...}` on stdout under --json, else on stderr.

    Given an exception, the JSON also names its type, so scripts can tell failures apart.
    """
    line = " ".join(str(message).split())  # one line, whatever the message held
    if json_output if json_output is not None else _json_mode:
        document: dict[str, Any] = {"error": line, "exit_code": int(code)}
        if isinstance(message, BaseException):
            document["type"] = type(message).__name__
        sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
    else:
        _stderr.print(f"[bold red]error:[/] {escape(line)}", highlight=False)
    raise typer.Exit(int(code))
