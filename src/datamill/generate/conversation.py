"""Helpers shared by the conversation families (support, workflows, safety).

Their data files (scenarios, tools, attack styles), engines by role with a fallback, and the
guard every generated conversation passes before it becomes a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel

from datamill.errors import DatamillError, InputError
from datamill.generate.family import Context
from datamill.llm.engine import Engine
from datamill.records import Message
from datamill.yamlfile import load_model, parse_yaml, to_model

M = TypeVar("M", bound=BaseModel)


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=_Identified)


def load_data(name_or_path: str, folder: str, model: type[M]) -> M:
    """A built-in data file of ``datamill/generate/<folder>`` by name, or a user's YAML file."""
    if Path(name_or_path).suffix in (".yaml", ".yml"):
        return load_model(name_or_path, model)
    base = resources.files("datamill.generate") / folder
    known = sorted(p.name.removesuffix(".yaml") for p in base.iterdir() if p.name.endswith(".yaml"))
    if name_or_path not in known:
        reason = f"no such built-in {folder} file; built-in: {', '.join(known)}"
        raise InputError(name_or_path, None, None, reason)
    text = (base / f"{name_or_path}.yaml").read_text(encoding="utf-8")
    return to_model(parse_yaml(text, name_or_path), model, name_or_path)


def select(items: Sequence[Item], ids: Sequence[str] | None, what: str) -> list[Item]:
    """The items whose id is in ``ids`` (all when ``ids`` is None); unknown ids are errors."""
    if ids is None:
        return list(items)
    unknown = set(ids) - {item.id for item in items}
    if unknown:
        raise DatamillError(f"unknown {what}: {', '.join(sorted(unknown))}")
    return [item for item in items if item.id in ids]


def engine_for(ctx: Context, role: str) -> Engine:
    """The engine of ``role`` if the recipe names one, else the generator's."""
    return ctx.engines.get(role) or ctx.engine("generator")


def check_conversation(messages: Sequence[Message]) -> str | None:
    """What is wrong with the shape of a chat, or None when it is a well-formed example.

    An optional system message, then a user turn; user and assistant turns alternate; an
    assistant turn with tool calls is followed by exactly one tool message per call and
    then an assistant turn; the conversation ends with an assistant turn with text.
    """
    rest = list(messages[1:] if messages and messages[0].role == "system" else messages)
    if not rest or rest[0].role != "user":
        return "the conversation does not start with a user turn"
    expected = "user"
    pending: set[str] = set()
    for i, message in enumerate(rest):
        if pending:
            if message.role != "tool" or message.tool_call_id not in pending:
                return f"turn {i}: expected a tool result for {sorted(pending)}"
            pending.discard(message.tool_call_id)
            expected = "assistant" if not pending else "tool"
            continue
        if message.role != expected:
            return f"turn {i}: expected {expected}, got {message.role}"
        if message.role == "assistant" and message.tool_calls:
            pending = {call.id for call in message.tool_calls}
            if len(pending) != len(message.tool_calls):
                return f"turn {i}: tool call ids repeat"
            continue
        if not (message.content or "").strip():
            return f"turn {i}: empty {message.role} message"
        expected = "assistant" if message.role == "user" else "user"
    if pending or rest[-1].role != "assistant" or rest[-1].tool_calls:
        return "the conversation does not end with an assistant reply"
    return None
