"""Records to Arrow tables and back, losslessly.

Scalar fields and messages are native Arrow columns, so other tools (DuckDB, pandas,
``datasets``) can read a shard directly; free-form parts (metadata, provenance, checks,
annotations, decisions, candidates, tool calls) are JSON text, which round-trips any JSON value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError

from datamill.records import Message, Record

MESSAGE = pa.struct(
    [
        ("role", pa.string()),
        ("content", pa.string()),
        ("name", pa.string()),
        ("tool_calls", pa.string()),
        ("tool_call_id", pa.string()),
    ]
)
JSON_COLUMNS = ("candidates", "metadata", "provenance", "checks", "annotations", "decisions")
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("messages", pa.list_(MESSAGE)),
        pa.field("task", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("language", pa.string()),
        *(pa.field(name, pa.string()) for name in JSON_COLUMNS),
    ]
)


# pydantic's own JSON serializer for the JSON columns: a quarter of the time of dumping the
# record to Python objects and json.dumps-ing those, with the same values once read back.
_JSON_COLUMNS = {name: TypeAdapter(Record.model_fields[name].annotation) for name in JSON_COLUMNS}
_TOOL_CALLS = TypeAdapter(Message.model_fields["tool_calls"].annotation)
_PLAIN_COLUMNS = [f.name for f in SCHEMA if f.name not in JSON_COLUMNS and f.name != "messages"]
_MESSAGE_FIELDS = [f.name for f in MESSAGE if f.name != "tool_calls"]


def to_row(record: Record) -> dict[str, Any]:
    try:
        return _to_row(record)
    except PydanticSerializationError:
        # Text UTF-8 cannot hold (lone surrogates): take the slow path, so that the error is
        # the same UnicodeEncodeError as ever, raised where the row is encoded.
        return _to_row_slowly(record)


def _to_row(record: Record) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(record, name) for name in _PLAIN_COLUMNS}
    row["messages"] = [
        {
            **{name: getattr(m, name) for name in _MESSAGE_FIELDS},
            "tool_calls": (
                None if m.tool_calls is None else _TOOL_CALLS.dump_json(m.tool_calls).decode()
            ),
        }
        for m in record.messages
    ]
    for name, adapter in _JSON_COLUMNS.items():
        row[name] = adapter.dump_json(getattr(record, name)).decode()
    return row


def _to_row_slowly(record: Record) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    for message in data["messages"]:
        if message["tool_calls"] is not None:
            message["tool_calls"] = _dumps(message["tool_calls"])
    for name in JSON_COLUMNS:
        data[name] = _dumps(data[name])
    return data


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def from_row(row: dict[str, Any]) -> Record:
    data = dict(row)
    data["messages"] = [
        {**m, "tool_calls": json.loads(m["tool_calls"]) if m["tool_calls"] else None}
        for m in data["messages"]
    ]
    for name in JSON_COLUMNS:
        text = data.pop(name, None)  # a column newer than the shard is absent: its default
        if text is not None:  # most are empty: no parser for those
            data[name] = {} if text == "{}" else [] if text == "[]" else json.loads(text)
    return Record.model_validate(data)


def to_table(records: Iterable[Record]) -> pa.Table:
    """The records as one table, built column by column: a third of the time of going
    through a dict per row (``to_row``), with the same values."""
    records = list(records)
    try:
        columns = _columns(records)
    except PydanticSerializationError:
        # Text UTF-8 cannot hold (lone surrogates): the row path raises the usual error.
        return pa.Table.from_pylist([to_row(r) for r in records], schema=SCHEMA)
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _columns(records: list[Record]) -> list[pa.Array]:
    offsets = [0]
    fields: dict[str, list[Any]] = {f.name: [] for f in MESSAGE}
    for record in records:
        for m in record.messages:
            for name in _MESSAGE_FIELDS:
                fields[name].append(getattr(m, name))
            calls = m.tool_calls
            fields["tool_calls"].append(None if calls is None else _TOOL_CALLS.dump_json(calls))
        offsets.append(len(fields["role"]))
    messages = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays(
            [pa.array(fields[f.name], f.type) for f in MESSAGE], fields=list(MESSAGE)
        ),
    )
    columns = {
        name: pa.array([getattr(r, name) for r in records], pa.string()) for name in _PLAIN_COLUMNS
    }
    columns["messages"] = messages
    for name, adapter in _JSON_COLUMNS.items():
        columns[name] = pa.array([_json(adapter, getattr(r, name)) for r in records], pa.string())
    return [columns[f.name] for f in SCHEMA]


def _json(adapter: TypeAdapter[Any], value: Any) -> bytes | str:
    """One value of a JSON column, as text or as UTF-8 bytes (Arrow takes either)."""
    # Most records leave most of these columns empty: skip the serializer for those.
    if isinstance(value, list) and not value:
        return "[]"
    if isinstance(value, dict) and not value:
        return "{}"
    return adapter.dump_json(value)


def from_batch(batch: pa.RecordBatch | pa.Table) -> list[Record]:
    return [from_row(row) for row in batch.to_pylist()]
