"""The Record model: content ids, validation, timestamps and lossless serialisation."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from datamill.arrow import from_batch, to_table
from datamill.records import CheckResult, Message, Record
from strategies import messages as any_message
from strategies import records

FAST = settings(max_examples=50, deadline=None)

TOOL_CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Tu es un assistant. 日本語 ✓"},
    {"role": "user", "content": "What is 2+2?\n\t\x00"},
    {
        "role": "assistant",
        "tool_calls": [
            {"id": "call_1", "function": {"name": "calc", "arguments": '{"expr": "2+2"}'}}
        ],
    },
    {"role": "tool", "content": "4", "tool_call_id": "call_1", "name": "calc"},
    {"role": "assistant", "content": "4"},
]


def make(messages: list[dict[str, Any]] | None = None, **fields: Any) -> Record:
    fields.setdefault("provenance", {"source": "human"})
    return Record(
        messages=[{"role": "user", "content": "hi"}] if messages is None else messages, **fields
    )


def error_locations(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in exc.value.errors()]


# -- ids ------------------------------------------------------------------------------


def test_id_is_a_fixed_content_hash() -> None:
    # Computed once and pinned: a change here silently re-keys every stored dataset.
    assert make(TOOL_CONVERSATION).id == "fd94051a68c7f4cfc4743a8f38a66ace"


def test_id_ignores_everything_but_the_messages() -> None:
    plain = make(TOOL_CONVERSATION)
    decorated = make(
        TOOL_CONVERSATION,
        task="math",
        metadata={"k": [1, 2]},
        provenance={"source": "synthetic", "model": "m", "created_at": datetime(2001, 1, 1)},
        checks={"len": {"passed": True}},
    )
    assert decorated.id == plain.id


def test_explicit_id_is_kept() -> None:
    assert make(id="imported-42").id == "imported-42"


@FAST
@given(st.lists(any_message, min_size=1, max_size=4))
def test_same_messages_give_same_id(msgs: list[Message]) -> None:
    rebuilt = [Message.model_validate(m.model_dump()) for m in msgs]
    first = Record(messages=msgs, provenance={"source": "human"})
    second = Record(messages=rebuilt, provenance={"source": "imported", "seed": 7})
    assert first.id == second.id
    assert re.fullmatch("[0-9a-f]{32}", first.id)


@FAST
@given(st.lists(any_message, min_size=1, max_size=3), st.lists(any_message, min_size=1, max_size=3))
def test_different_messages_give_different_ids(a: list[Message], b: list[Message]) -> None:
    assume(a != b)
    assert make([m.model_dump() for m in a]).id != make([m.model_dump() for m in b]).id


def test_one_changed_character_changes_the_id() -> None:
    changed = [dict(m) for m in TOOL_CONVERSATION]
    changed[-1]["content"] = "5"
    assert make(changed).id != make(TOOL_CONVERSATION).id


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, ("messages", 0, "role")),
        ({"messages": [{"role": "user", "content": 3}]}, ("messages", 0, "content")),
        ({"messages": [{"role": "user", "content": "x", "mood": "sad"}]}, ("messages", 0, "mood")),
        ({"messages": []}, ("messages",)),
        ({"messages": "hello"}, ("messages",)),
        ({"provenance": {"source": "scraped"}}, ("provenance", "source")),
        ({"provenance": {"source": "human", "extra": 1}}, ("provenance", "extra")),
        ({"provenance": {"source": "human", "seed": "seven"}}, ("provenance", "seed")),
        ({"colour": "blue"}, ("colour",)),
        ({"checks": {"len": {"score": math.nan}}}, ("checks", "len", "score")),
        ({"checks": {"len": {"score": math.inf}}}, ("checks", "len", "score")),
        ({"checks": {"len": {"passed": "maybe"}}}, ("checks", "len", "passed")),
        ({"candidates": [{"content": "x", "source": "alien"}]}, ("candidates", 0, "source")),
    ],
)
def test_invalid_fields_are_refused_with_their_location(
    fields: dict[str, Any], location: tuple[Any, ...]
) -> None:
    with pytest.raises(ValidationError) as exc:
        make(**fields)
    assert any(loc[: len(location)] == location for loc in error_locations(exc))


def test_wrong_tool_call_shape_is_refused() -> None:
    call = {"id": "c", "type": "retrieval", "function": {"name": "f", "arguments": "{}"}}
    with pytest.raises(ValidationError):
        make([{"role": "assistant", "tool_calls": [call]}])
    call = {"id": "c", "function": {"name": "f", "arguments": {"x": 1}}}
    with pytest.raises(ValidationError):
        make([{"role": "assistant", "tool_calls": [call]}])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_anywhere_in_json_values(bad: float) -> None:
    with pytest.raises(ValidationError):
        make(metadata={"deep": [{"x": bad}]})
    with pytest.raises(ValidationError):
        make(annotations=[{"annotator": "a", "question": "q", "value": bad}])
    with pytest.raises(ValidationError):
        make(annotations=[{"annotator": "a", "question": "q", "value": 1, "seconds": bad}])


@pytest.mark.parametrize("tool_calls", [None, []])
def test_message_needs_content_or_tool_calls(tool_calls: list[Any] | None) -> None:
    with pytest.raises(ValidationError, match="needs content or tool_calls"):
        Message(role="assistant", tool_calls=tool_calls)


def test_empty_content_and_tool_calls_alone_are_valid() -> None:
    assert Message(role="assistant", content="").content == ""
    call = {"id": "c", "function": {"name": "f", "arguments": "{}"}}
    message = Message.model_validate({"role": "assistant", "tool_calls": [call]})
    assert message.content is None
    assert message.tool_calls is not None
    assert message.tool_calls[0].type == "function"


# -- timestamps -----------------------------------------------------------------------


def test_naive_datetimes_are_taken_as_utc() -> None:
    record = make(
        provenance={"source": "human", "created_at": datetime(2024, 5, 6, 7, 8, 9)},
        annotations=[
            {"annotator": "a", "question": "q", "value": 1, "created_at": "2024-05-06T07:08:09"}
        ],
    )
    expected = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    for stamp in (record.provenance.created_at, record.annotations[0].created_at):
        assert stamp == expected
        assert stamp.utcoffset() == timedelta(0)


def test_default_timestamps_are_aware() -> None:
    assert make().provenance.created_at.utcoffset() == timedelta(0)


def test_aware_datetimes_keep_their_instant() -> None:
    stamp = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    created = make(provenance={"source": "human", "created_at": stamp}).provenance.created_at
    assert created == stamp
    assert created == datetime(2024, 1, 1, 17, 0, tzinfo=UTC)


def test_sub_minute_offsets_survive_json() -> None:
    # Amsterdam's local mean time was +00:19:32; JSON offsets only go down to minutes.
    stamp = datetime(1900, 6, 1, 12, 0, tzinfo=timezone(timedelta(minutes=19, seconds=32)))
    record = make(provenance={"source": "human", "created_at": stamp})
    assert Record.model_validate_json(record.model_dump_json()).provenance.created_at == stamp


def test_datetime_out_of_range_in_utc_is_a_validation_error() -> None:
    stamp = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    with pytest.raises(ValidationError, match="out of range"):
        make(provenance={"source": "human", "created_at": stamp})


# -- lossless round trips -------------------------------------------------------------


def assert_identical(back: Record, record: Record) -> None:
    """Equal, and equal as JSON too, which also tells 1 from 1.0 from True and 0.0 from -0.0."""
    assert back == record
    assert back.model_dump_json() == record.model_dump_json()


@FAST
@given(records)
def test_json_line_round_trip(record: Record) -> None:
    line = record.model_dump_json()
    assert "\n" not in line
    assert_identical(Record.model_validate_json(line), record)


@settings(max_examples=50, deadline=None)
@given(st.lists(records, max_size=3))
def test_arrow_round_trip(batch: list[Record]) -> None:
    back = from_batch(to_table(batch))
    assert len(back) == len(batch)
    for got, want in zip(back, batch, strict=True):
        assert_identical(got, want)


# -- helpers --------------------------------------------------------------------------


def test_prompt_and_response() -> None:
    record = make(TOOL_CONVERSATION)
    assert record.response == "4"
    assert record.prompt == record.messages[:-1]
    open_ended = make([{"role": "user", "content": "hi"}])
    assert open_ended.response is None
    assert open_ended.prompt == open_ended.messages


def test_with_check_returns_a_copy() -> None:
    record = make(checks={"a": {"passed": True}})
    checked = record.with_check("b", CheckResult(score=0.5))
    assert set(checked.checks) == {"a", "b"}
    assert set(record.checks) == {"a"}
    assert checked.id == record.id
