"""SFT export: one ``{"messages": [...]}`` object per line, as TRL and OpenAI fine-tuning read."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datamill.checks import passed
from datamill.records import Record
from datamill.store import fsync_dir


@dataclass
class ExportCounts:
    written: int = 0
    failed_checks: int = 0  # left out: a check failed
    no_reply: int = 0  # left out: the conversation does not end with an assistant turn


def sft_row(record: Record) -> dict[str, object]:
    return {"messages": [m.model_dump(mode="json", exclude_none=True) for m in record.messages]}


def write_sft_jsonl(
    records: Iterable[Record], path: str | Path, only_passed: bool = True
) -> ExportCounts:
    """Write conversations that end in an assistant turn (and, by default, passed every check).

    The file appears whole or not at all: it is written aside and renamed into place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    counts = ExportCounts()
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                if only_passed and not passed(record):
                    counts.failed_checks += 1
                elif record.response is None:
                    counts.no_reply += 1
                else:
                    f.write(json.dumps(sft_row(record), ensure_ascii=False) + "\n")
                    counts.written += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return counts
