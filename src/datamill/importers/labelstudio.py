"""Label Studio JSON exports: a list of tasks ``{"id", "data": {...}, "annotations": [...]}``.

A task's ``data`` is read as a row (see :func:`~datamill.importers.common.row_to_record`:
``messages``, ``prompt``/``response``, ``instruction``..., with ``answer1``, ``answer2``...
as candidates). Each completed annotation's results become
:class:`~datamill.records.Annotation` s: the control's ``from_name`` is the question, the
value is the result's own entry (``choices`` — one choice as text —, ``rating``,
``number``, ``textarea`` text...), a Pairwise result's ``left``/``right`` is candidate 0/1,
the annotator is ``completed_by`` and the time ``lead_time``. Cancelled annotations are
left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datamill.importers.common import Item, Rejected, json_items, row_to_record, to_record
from datamill.ingest import _Bad
from datamill.records import Annotation, Record

_PAIRWISE = {"left": 0, "right": 1}


def _value(result: dict[str, Any], where: str) -> Any:
    value, kind = result.get("value"), result.get("type")
    if not isinstance(value, dict):
        raise _Bad(f"{where}.value", "missing or not an object")
    if kind == "pairwise":
        return _PAIRWISE.get(str(value.get("selected")), value.get("selected"))
    if kind == "textarea" and isinstance(value.get("text"), list):
        return "\n".join(str(t) for t in value["text"])
    inner = value.get(kind) if isinstance(kind, str) else None
    if isinstance(inner, list) and len(inner) == 1 and kind == "choices":
        return inner[0]
    return value if inner is None else inner


def _annotator(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("email") or value.get("id")
    if value is None:
        raise _Bad("completed_by", "missing")
    return str(value)


def task_record(task: dict[str, Any], file_name: str) -> Record:
    data = task.get("data")
    if not isinstance(data, dict):
        raise _Bad("data", "a task needs its data object")
    annotations = []
    entries = task.get("annotations") or []
    if not isinstance(entries, list):
        raise _Bad("annotations", "expected a list")
    for i, entry in enumerate(entries):
        where = f"annotations[{i}]"
        if not isinstance(entry, dict):
            raise _Bad(where, "not an object")
        if entry.get("was_cancelled"):
            continue
        results = entry.get("result") or []
        if not isinstance(results, list):
            raise _Bad(f"{where}.result", "expected a list")
        for j, result in enumerate(results):
            spot = f"{where}.result[{j}]"
            if not isinstance(result, dict) or not isinstance(result.get("from_name"), str):
                raise _Bad(f"{spot}.from_name", "missing")
            answer = {
                "annotator": _annotator(entry.get("completed_by")),
                "question": result["from_name"],
                "value": _value(result, spot),
                "seconds": entry.get("lead_time"),
                "metadata": {"labelstudio_annotation": entry.get("id"), "type": result.get("type")},
            }
            if entry.get("created_at"):
                answer["created_at"] = entry["created_at"]
            annotations.append(Annotation.model_validate(answer))
    record = row_to_record(dict(data), file_name)
    extra = {"labelstudio_task": task.get("id")}
    return record.model_copy(
        update={
            "annotations": [*record.annotations, *annotations],
            "metadata": {**record.metadata, **extra},
        }
    )


def read_labelstudio(path: Path) -> Iterator[Record | Rejected]:
    for item in json_items(path):
        if isinstance(item, Item):
            yield to_record(item, path, lambda task: task_record(task, path.name))
        else:
            yield item
