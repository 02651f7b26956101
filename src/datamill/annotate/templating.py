"""The Jinja2 environment of the pages: autoescaping on, ``md`` for untrusted Markdown."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from datamill.annotate.render import diff, markdown

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.autoescape = True  # every template, whatever its file name ends with
templates.env.globals.update(md=markdown, diff=diff)
