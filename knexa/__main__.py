"""`python -m knexa` is the `knexa` command."""

from knexa.cli import app

app()
