"""Versioned prompt templates (Jinja2), recorded by name and version in provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, StrictUndefined

from datamill.records import Message

# Prompts are plain text for a model, not HTML: no autoescaping. Undefined variables are
# errors, so a template typo fails the first call instead of sending a broken prompt.
_env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    user: str
    system: str | None = None

    def render(self, **variables: Any) -> list[Message]:
        messages = []
        if self.system is not None:
            system = _env.from_string(self.system).render(**variables)
            messages.append(Message(role="system", content=system))
        user = _env.from_string(self.user).render(**variables)
        messages.append(Message(role="user", content=user))
        return messages
