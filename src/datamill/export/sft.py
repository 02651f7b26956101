"""SFT: conversations that end in an assistant turn.

Conversational style: ``{"messages": [...]}`` (TRL's language-modelling type). Standard
style: ``{"prompt": str, "completion": str}`` (TRL's prompt-completion type), for
single-turn records only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from datamill.export.rows import (
    MESSAGES,
    MULTI_TURN,
    NO_REPLY,
    Format,
    Row,
    Skip,
    Style,
    messages,
    prompt_text,
)
from datamill.records import Record


def sft_row(record: Record) -> dict[str, object]:
    return {"messages": messages(record.messages)}


def rows(record: Record, style: Style) -> list[Row] | Skip:
    if record.response is None:
        return NO_REPLY
    if style == "conversational":
        return [sft_row(record)]
    text = prompt_text(record)
    return MULTI_TURN if text is None else [{"prompt": text, "completion": record.response}]


def schema(style: Style) -> pa.Schema:
    if style == "conversational":
        return pa.schema([("messages", MESSAGES)])
    return pa.schema([("prompt", pa.string()), ("completion", pa.string())])


SFT = Format("sft", rows, schema)


def write_sft_jsonl(records: Iterable[Record], path: str | Path, only_passed: bool = True):  # type: ignore[no-untyped-def]
    """Write conversations that end in an assistant turn (and, by default, passed every
    check) to one JSONL file, which appears whole or not at all."""
    from datamill.export.run import export_records

    return export_records(records, SFT, {"train": Path(path)}, only_passed=only_passed)
