"""What every export format shares: message dicts, their Arrow type, and the two TRL styles.

TRL reads most data types in two styles: *conversational* (``prompt``, ``chosen``,
``completion``... are lists of ``{"role", "content"}`` messages, rendered later by the
model's chat template) and *standard* (the same keys hold plain text). The standard style
cannot say who speaks, so it is written only for a prompt that is one user turn; other
records are left out and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from datamill.records import Message, Record

Style = Literal["conversational", "standard"]
Row = dict[str, Any]


class Skip(str):
    """Why a record gave no row (a reason, counted in the export's ``left_out``)."""


MULTI_TURN = Skip("prompt_not_single_user_turn")
NO_REPLY = Skip("no_assistant_reply")

_STR = pa.string()
TOOL_CALL = pa.struct(
    [
        ("id", _STR),
        ("type", _STR),
        ("function", pa.struct([("name", _STR), ("arguments", _STR)])),
    ]
)
MESSAGE = pa.struct(
    [
        ("role", _STR),
        ("content", _STR),
        ("name", _STR),
        ("tool_calls", pa.list_(TOOL_CALL)),
        ("tool_call_id", _STR),
    ]
)
MESSAGES = pa.list_(MESSAGE)


def message(m: Message) -> Row:
    return m.model_dump(mode="json", exclude_none=True)


def messages(ms: Iterable[Message]) -> list[Row]:
    return [message(m) for m in ms]


def assistant(text: str) -> list[Row]:
    return [{"role": "assistant", "content": text}]


def prompt_text(record: Record) -> str | None:
    """The prompt as plain text, if it is exactly one user turn."""
    prompt = record.prompt
    if len(prompt) == 1 and prompt[0].role == "user" and prompt[0].content is not None:
        return prompt[0].content
    return None


def prompt_in(record: Record, style: Style) -> list[Row] | str | None:
    """The prompt in ``style``; None when the standard style cannot hold it."""
    return messages(record.prompt) if style == "conversational" else prompt_text(record)


def reply_in(text: str, style: Style) -> list[Row] | str:
    return assistant(text) if style == "conversational" else text


def text_or_messages(style: Style) -> pa.DataType:
    return MESSAGES if style == "conversational" else _STR


@dataclass(frozen=True)
class Format:
    """An export format: the rows one record gives (or why it gives none), their Arrow
    schema in each style, and which styles and file formats it supports."""

    name: str
    rows: Callable[[Record, Style], list[Row] | Skip]
    schema: Callable[[Style], pa.Schema]
    styles: tuple[Style, ...] = ("conversational", "standard")
    file_formats: tuple[str, ...] = ("jsonl", "parquet")
    only_passed: bool = True  # leave out records that failed a check, unless told not to
