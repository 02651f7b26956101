"""Argilla 2.x record exports: ``records.json`` of ``Dataset.to_disk`` or
``dataset.records.to_json``, a JSON list (or JSON Lines) of
``{"id", "fields", "metadata", "responses", "suggestions", "status"}``.

``fields`` is read as a row (a chat field of ``{"role", "content"}`` messages, or
prompt/response-like fields; see :func:`~datamill.importers.common.row_to_record`).
Submitted responses become :class:`~datamill.records.Annotation` s (question = the
question's name, annotator = ``user_id``); draft and discarded ones are left out.
Responses may be keyed by question (``{"label": [{"value", "user_id", "status"}]}``) or a
list with ``question_name``. Record metadata is kept; suggestions go to
``metadata["argilla_suggestions"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datamill.importers.common import Item, Rejected, json_items, row_to_record, to_record
from datamill.ingest import _Bad
from datamill.records import Annotation, Record

_CHAT_NAMES = ("messages", "chat", "conversation")


def _responses(value: Any) -> list[tuple[str, dict[str, Any], str]]:
    """(question, response, place) for every response, whichever layout."""
    if value is None:
        return []
    if isinstance(value, dict):
        out = []
        for question, answers in value.items():
            if not isinstance(answers, list):
                raise _Bad(f"responses.{question}", "expected a list of responses")
            out += [(question, a, f"responses.{question}[{i}]") for i, a in enumerate(answers)]
        return out
    if isinstance(value, list):
        return [
            (a.get("question_name") if isinstance(a, dict) else None, a, f"responses[{i}]")  # type: ignore[misc]
            for i, a in enumerate(value)
        ]
    raise _Bad("responses", "expected an object or a list")


def argilla_record(item: dict[str, Any], file_name: str) -> Record:
    fields = item.get("fields")
    if not isinstance(fields, dict):
        raise _Bad("fields", "an Argilla record needs its fields object")
    row = dict(fields)
    for name in _CHAT_NAMES:
        if isinstance(row.get(name), list) and "messages" not in row:
            row["messages"] = row.pop(name)
    annotations = []
    for question, response, where in _responses(item.get("responses")):
        if not isinstance(response, dict) or not isinstance(question, str):
            raise _Bad(where, "a response needs its question and value")
        if response.get("status", "submitted") != "submitted":
            continue
        if response.get("user_id") is None or "value" not in response:
            raise _Bad(where, "a response needs user_id and value")
        annotations.append(
            Annotation(
                annotator=str(response["user_id"]),
                question=question,
                value=response["value"],
                metadata={"source": "argilla"},
            )
        )
    record = row_to_record(row, file_name)
    metadata = dict(record.metadata)
    if isinstance(item.get("metadata"), dict):
        metadata.update(item["metadata"])
    if item.get("suggestions"):
        metadata["argilla_suggestions"] = item["suggestions"]
    if item.get("id") is not None:
        metadata["argilla_id"] = str(item["id"])
    return record.model_copy(
        update={"annotations": [*record.annotations, *annotations], "metadata": metadata}
    )


def read_argilla(path: Path) -> Iterator[Record | Rejected]:
    if path.is_dir():
        path = path / "records.json"
    for item in json_items(path):
        if isinstance(item, Item):
            yield to_record(item, path, lambda r: argilla_record(r, path.name))
        else:
            yield item
