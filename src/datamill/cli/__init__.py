"""The ``datamill`` command: one module per group of commands, sharing one Typer app."""

from __future__ import annotations

from rich.markup import escape

from datamill.cli import data, diversity, generation, quality  # noqa: F401  (they register commands)
from datamill.cli.common import app, err
from datamill.errors import DatamillError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: user errors print as one line, not a traceback."""
    try:
        app()
    except DatamillError as e:
        err.print(f"[red]error:[/] {escape(str(e))}")
        raise SystemExit(1) from None
