"""Untrusted text to HTML: Markdown with raw HTML disabled, so model output stays inert.

Every message, candidate and guideline shown in the app goes through ``markdown``: raw HTML
in the source is escaped (markdown-it's ``html`` option off), and links whose scheme is not
http(s)/mailto are not made links (markdown-it refuses ``javascript:``, ``vbscript:``,
``file:`` and ``data:`` except images by default; images are not loaded at all here).
"""

from __future__ import annotations

import difflib

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.disable("image")  # an <img> would fetch a URL of the model's choosing


def markdown(text: str | None) -> Markup:
    """Markdown to HTML that carries no markup of the source's own."""
    return Markup(_md.render(text or ""))


def diff(before: str, after: str) -> Markup:
    """A word-level diff of a rewrite as escaped HTML (<del>/<ins>)."""
    a, b = before.split(" "), after.split(" ")
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{escape(' '.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{escape(' '.join(b[j1:j2]))}</ins>")
        if op == "equal":
            out.append(str(escape(" ".join(a[i1:i2]))))
    return Markup(" ".join(out))
