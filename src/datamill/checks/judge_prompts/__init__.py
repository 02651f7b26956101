"""Judge prompts: versioned Jinja templates kept as data files next to this module.

Each ``<name>.yaml`` holds ``name``, ``version``, an optional ``system`` and a ``user``
template. A judge records the name and version of the prompt it used on every result, so a
score can always be traced to the exact wording behind it; a user may pass a file of the
same shape instead. Text being judged is untrusted: :func:`quote` puts it between markers
that it cannot contain, so an injected "ignore previous instructions" stays data.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from datamill.generate.template import PromptTemplate
from datamill.records import Message
from datamill.yamlfile import parse_yaml, read_yaml, to_model

_MARKER_LIKE = re.compile(r"[<>]{3,}")


class PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    system: str | None = None
    user: str = Field(min_length=1)


def _template(data: object, where: str) -> PromptTemplate:
    spec = to_model(data, PromptFile, where)
    return PromptTemplate(spec.name, spec.version, spec.user, spec.system)


@cache
def shipped(name: str) -> PromptTemplate:
    """The prompt ``name`` that ships with datamill."""
    text = (resources.files(__package__) / f"{name}.yaml").read_text("utf-8")
    return _template(parse_yaml(text, f"judge_prompts/{name}.yaml"), f"judge_prompts/{name}.yaml")


def load(name: str, path: str | Path | None = None) -> PromptTemplate:
    """The user's prompt file at ``path``, or else the shipped prompt ``name``."""
    return shipped(name) if path is None else _template(read_yaml(path), str(path))


def shorten(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: its start and its end (where answers
    and conclusions are), with a note of what was left out between them."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters left out ...]\n{text[len(text) - tail :]}"


def quote(label: str, text: str, limit: int | None = None) -> str:
    """``text`` (shortened to ``limit`` characters) between ``<<<LABEL>>>`` and
    ``<<<END LABEL>>>`` markers.

    Runs of three or more ``<`` or ``>`` inside the text are spaced out first, so the text
    can neither close its block early nor open a block that looks like the prompt's own.
    """
    safe = _MARKER_LIKE.sub(lambda m: " ".join(m.group()), text)
    safe = safe if limit is None else shorten(safe, limit)
    return f"<<<{label}>>>\n{safe}\n<<<END {label}>>>"


def transcript(messages: list[Message]) -> str:
    """A conversation as plain text, one ``Role: text`` block per turn."""
    return "\n\n".join(f"{m.role.capitalize()}: {m.content or ''}" for m in messages)
