"""`knexa --help` loads no command group: the groups are imported only when one is invoked."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from knexa.cli import GROUPS, app

# (the top-level `org` package itself may appear: the standard library probes `org.python.core`)
HEAVY = (
    "web3",
    "torch",
    "eth_account",
    "fastapi",
    "chain.client",
    "market.ledger",
    "matchmaker.policies",
    "org.cli",
    "agent.agent",
)


def test_top_level_help_imports_no_market_package() -> None:
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from knexa.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == ""


def test_help_lists_every_group_and_each_group_loads() -> None:
    runner = CliRunner()
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0
    for name in GROUPS:
        assert name in listing.output
        group_help = runner.invoke(app, [name, "--help"])
        assert group_help.exit_code == 0, (name, group_help.output)
        assert "Usage" in group_help.output
    assert "Exit codes" in listing.output
