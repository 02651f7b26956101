"""Hypothesis strategies for datamill records: realistic content with the nasty parts kept.

Text is any Unicode hypothesis generates (control characters, NUL, empty strings, astral
characters), minus lone surrogates, which no UTF-8 file can hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from datamill.records import (
    Annotation,
    Candidate,
    CheckResult,
    Decision,
    FunctionCall,
    Message,
    Provenance,
    Record,
    ToolCall,
    Usage,
)

text = st.text(max_size=40)
short_text = st.text(max_size=12)
optional_text = st.none() | text

# Any JSON value except NaN and infinity, which Record refuses.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(short_text, children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(short_text, json_values, max_size=4)

# Fixed offsets down to the microsecond, like the local mean time offsets of old tz data.
offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
).map(timezone)
aware_datetimes = st.datetimes(
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.just(UTC) | offsets,
)
sources = st.sampled_from(["synthetic", "human", "imported"])

tool_calls = st.builds(
    ToolCall, id=short_text, function=st.builds(FunctionCall, name=short_text, arguments=text)
)


@st.composite
def _message(draw: st.DrawFn) -> Message:
    calls = draw(st.none() | st.lists(tool_calls, max_size=3))
    content = draw(text) if not calls else draw(optional_text)
    return Message(
        role=draw(st.sampled_from(["system", "user", "assistant", "tool"])),
        content=content,
        name=draw(st.none() | short_text),
        tool_calls=calls,
        tool_call_id=draw(st.none() | short_text),
    )


messages = _message()


candidates = st.builds(
    Candidate,
    content=text,
    source=sources,
    model=optional_text,
    backend=optional_text,
    params=json_objects,
    metadata=json_objects,
)
counts = st.integers(min_value=0, max_value=10**9)
usages = st.builds(
    Usage,
    calls=counts,
    prompt_tokens=counts,
    completion_tokens=counts,
    seconds=st.floats(min_value=0, max_value=1e6),
    cost=st.none() | st.floats(min_value=0, max_value=1e6),
)
provenances = st.builds(
    Provenance,
    source=sources,
    model=optional_text,
    backend=optional_text,
    template=optional_text,
    template_version=optional_text,
    params=json_objects,
    seed=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    parents=st.lists(short_text, max_size=3),
    recipe=optional_text,
    usage=st.none() | usages,
    created_at=aware_datetimes,
)
check_results = st.builds(
    CheckResult,
    score=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    passed=st.none() | st.booleans(),
    details=json_objects,
)
annotations = st.builds(
    Annotation,
    annotator=short_text,
    question=text,
    value=json_values,
    project=optional_text,
    seconds=st.none() | st.floats(min_value=0, allow_infinity=False),
    created_at=aware_datetimes,
    metadata=json_objects,
)
decisions = st.builds(
    Decision,
    outcome=short_text,
    by=short_text,
    reason=text,
    details=json_objects,
    created_at=aware_datetimes,
)
records = st.builds(
    Record,
    id=st.just("") | st.text(min_size=1, max_size=32),  # "" means: derive it from the content
    messages=st.lists(messages, min_size=1, max_size=4),
    candidates=st.lists(candidates, max_size=2),
    task=optional_text,
    domain=optional_text,
    language=optional_text,
    metadata=json_objects,
    provenance=provenances,
    checks=st.dictionaries(short_text, check_results, max_size=3),
    annotations=st.lists(annotations, max_size=2),
    decisions=st.dictionaries(short_text, decisions, max_size=2),
)
