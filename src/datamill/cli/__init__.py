"""The ``datamill`` command: one module per group of commands, sharing one Typer app.

Every module of this package registers its commands on ``app`` when imported; they are all
imported here, so adding a command group is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil

from rich.markup import escape

from datamill.cli.common import app, err
from datamill.errors import DatamillError

__all__ = ["app", "main"]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "common":
        importlib.import_module(f"{__name__}.{_module.name}")


def main() -> None:
    """Entry point: user errors print as one line, not a traceback."""
    try:
        app()
    except DatamillError as e:
        err.print(f"[red]error:[/] {escape(str(e))}")
        raise SystemExit(1) from None
