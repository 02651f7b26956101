"""The Jinja2 environment of the pages: autoescaping on, ``md`` for untrusted Markdown,
``option_keys`` for the keys that pick options."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from datamill.annotate.render import diff, markdown

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.autoescape = True  # every template, whatever its file name ends with


def option_keys(n: int) -> list[str]:
    """The key of each of ``n`` options: 1–9 and 0 (the tenth) for up to ten; past ten,
    every option has a number of as many digits as ``n`` has (01 … 12), typed digit by
    digit, so that no option is out of the keyboard's reach."""
    if n <= 10:
        return [str((i + 1) % 10) for i in range(n)]
    width = len(str(n))
    return [str(i + 1).zfill(width) for i in range(n)]


templates.env.globals.update(md=markdown, diff=diff, option_keys=option_keys)
