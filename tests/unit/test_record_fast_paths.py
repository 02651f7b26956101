"""The quick paths that records, their ids and their Arrow tables take give what the
general ones give, for any record."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamill.arrow import SCHEMA, to_row, to_table
from datamill.records import Message, Record, content_id
from strategies import messages, records

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def content_id_by_the_book(conversation: list[Message]) -> str:
    canonical = json.dumps(
        [m.model_dump(mode="json", exclude_none=True) for m in conversation],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@SETTINGS
@given(st.lists(messages, min_size=1, max_size=4))
def test_ids_are_the_hash_of_the_messages_dumped_as_json(conversation: list[Message]) -> None:
    assert content_id(conversation) == content_id_by_the_book(conversation)


def test_a_known_id_does_not_move() -> None:
    plain = [Message(role="user", content="hi"), Message(role="assistant", content="héllo")]
    assert content_id(plain) == "fcaad2e00f913b369e93e783e4d53cca"


@SETTINGS
@given(st.lists(records, max_size=5))
def test_tables_built_by_column_equal_tables_built_by_row(batch: list[Record]) -> None:
    by_column = to_table(batch)
    by_row = pa.Table.from_pylist([to_row(r) for r in batch], schema=SCHEMA)
    assert by_column.equals(by_row)
    assert by_column.to_pylist() == by_row.to_pylist()
