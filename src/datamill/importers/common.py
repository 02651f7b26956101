"""What the importers share: rejected rows, reading JSON arrays or JSON Lines, guessing a
file's format, and turning a row of fields into a Record."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from datamill.errors import InputError
from datamill.ingest import _Bad, _field_and_reason, _jsonl_rows, _to_record
from datamill.records import Candidate, Record

# Numbered alternative responses in a row (Label Studio's answer1/answer2, Argilla's
# response_1...): they become candidates, in number order.
_CANDIDATE = re.compile(r"^(?:answer|response|completion|output)_?(\d+)$")


@dataclass
class Rejected:
    error: InputError
    raw: Any


@dataclass(frozen=True)
class Item:
    """One object of a file: its line (JSON Lines) or index (JSON array), and value."""

    line: int | None
    index: int | None
    value: Any

    def error(self, path: Path, field: str | None, reason: str) -> InputError:
        if self.index is not None:
            field = f"[{self.index}]" + (f".{field}" if field else "")
        return InputError(str(path), self.line, field, reason)


def json_items(path: Path) -> Iterator[Item | Rejected]:
    """The objects of a JSON array file, or of a JSON Lines file, one at a time."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    if not head.startswith(b"["):
        for line, raw, value in _jsonl_rows(path):
            if isinstance(value, _Bad):
                yield Rejected(InputError(str(path), line, value.field, value.reason), raw)
            else:
                yield Item(line, None, value)
        return
    try:
        values = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        where = (
            f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        )
        raise InputError(str(path), None, None, f"invalid JSON{where}: {e}") from None
    for index, value in enumerate(values):
        if isinstance(value, dict):
            yield Item(None, index, value)
        else:
            yield Rejected(InputError(str(path), None, f"[{index}]", "not a JSON object"), value)


def row_to_record(row: dict[str, Any], file_name: str, **extra: Any) -> Record:
    """A record from a row of fields: the shapes :mod:`datamill.ingest` reads, TRL
    preference rows (``prompt``/``chosen``/``rejected``, text or messages, prompt implicit
    or not) and hh-rlhf transcripts, plus numbered alternative responses as candidates.
    ``extra`` adds Record fields."""
    if "chosen" in row and "rejected" in row:
        record = _preference(row, file_name)
        return record.model_copy(update=extra) if extra else record
    numbered = sorted((int(m[1]), k) for k in row if (m := _CANDIDATE.match(k)))
    rest = {k: v for k, v in row.items() if not _CANDIDATE.match(k)}
    candidates = []
    for _, key in numbered:
        if not isinstance(row[key], str):
            raise _Bad(key, "Input should be a valid string")
        candidates.append(Candidate(content=row[key], source="imported"))
    record = _to_record(rest, file_name)
    update = {**extra, "candidates": record.candidates + candidates} if candidates else extra
    return record.model_copy(update=update) if update else record


def to_record(item: Item, path: Path, build: Any) -> Record | Rejected:
    """``build(value)`` as a Record, or the row rejected with the place of its error."""
    try:
        return build(item.value)  # type: ignore[no-any-return]
    except (_Bad, ValidationError) as e:
        return Rejected(item.error(path, *_field_and_reason(e)), item.value)


def detect(path: Path) -> str:
    """The format of a file or directory, from its name and first object."""
    if path.is_dir():
        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        if (path / "records.json").exists():
            return "argilla"
        raise InputError(str(path), None, None, "a directory that is not a saved HF dataset")
    name = path.name.lower()
    if not name.endswith((".json", ".jsonl", ".jsonl.gz")):
        return "records"
    first = next((i for i in json_items(path) if isinstance(i, Item)), None)
    keys = set(first.value) if first is not None else set()
    if {"message_tree_id", "prompt"} <= keys:
        return "oasst"
    if "data" in keys and ("annotations" in keys or "predictions" in keys):
        return "labelstudio"
    if "fields" in keys and ("responses" in keys or "suggestions" in keys):
        return "argilla"
    if {"chosen", "rejected"} <= keys and str(first.value.get("chosen", "")).startswith(  # type: ignore[union-attr]
        "\n\nHuman:"
    ):
        return "hh-rlhf"
    return "records"


def _preference(row: dict[str, Any], file_name: str) -> Record:
    from datamill.importers.hh_rlhf import pair_record, ranked_record

    prompt, chosen, rejected = row.get("prompt"), row["chosen"], row["rejected"]
    rest = {k: v for k, v in row.items() if k not in ("prompt", "chosen", "rejected")}
    if prompt is None and isinstance(chosen, str):
        return pair_record(row, file_name, "chosen", "rejected")
    if isinstance(chosen, list) and isinstance(rejected, list):
        if prompt is None:  # implicit prompt: the messages both sides share
            shared = 0
            while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
                shared += 1
            prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
        chosen, rejected = _reply(chosen, "chosen"), _reply(rejected, "rejected")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise _Bad("prompt", "expected text or a non-empty list of messages")
    for key, value in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, str):
            raise _Bad(key, "expected text or a list with one assistant message")
    return ranked_record(prompt, [chosen, rejected], rest, file_name, "preference")


def _reply(messages: list[Any], field: str) -> Any:
    if len(messages) != 1 or not isinstance(messages[0], dict):
        raise _Bad(field, "expected one reply message after the shared prompt")
    return messages[0].get("content")
