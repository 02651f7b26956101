"""The Record: the one type every stage reads and writes.

A record is one training example: chat messages in the OpenAI/TRL format, optional
alternative responses (``candidates``) for preference data, where it came from
(``provenance``), what automatic checks said (``checks``), what humans said
(``annotations``) and what later stages decided (``decisions``). Stages never edit a
record in place; they return a copy with new fields.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

Role = Literal["system", "user", "assistant", "tool"]
Source = Literal["synthetic", "human", "imported"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    # Unknown keys are refused so that a typo in an input file is an error, not lost data;
    # NaN and infinity are refused because they do not survive JSON.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FunctionCall(_Model):
    name: str
    arguments: str  # JSON text, exactly as OpenAI-compatible servers send it


class ToolCall(_Model):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Model):
    role: Role
    content: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_or_tool_calls(self) -> Message:
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs content or tool_calls")
        return self


class Candidate(_Model):
    """One alternative response to the record's prompt."""

    content: str
    source: Source = "synthetic"
    model: str | None = None
    backend: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


def _aware(value: datetime) -> datetime:
    # Kept in UTC: the JSON form writes offsets to the minute only, so an offset like
    # LMT's +00:19:32 would otherwise shift the time by seconds on its way to disk.
    if value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime is out of range once converted to UTC") from None


class Usage(_Model):
    """What the model calls behind a record used; the ledger adds these up per source."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cost: float | None = None  # None when no price is known for the model


class Provenance(_Model):
    source: Source
    model: str | None = None
    backend: str | None = None
    template: str | None = None
    template_version: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    seed: int | None = None
    parents: list[str] = Field(default_factory=list)
    recipe: str | None = None
    usage: Usage | None = None
    created_at: datetime = Field(default_factory=utc_now)

    _tz = field_validator("created_at")(_aware)


class CheckResult(_Model):
    score: float | None = None
    passed: bool | None = None
    details: dict[str, JsonValue] = Field(default_factory=dict)


class Annotation(_Model):
    """One human response to one question about a record."""

    annotator: str
    question: str
    value: JsonValue
    project: str | None = None
    seconds: float | None = None
    created_at: datetime = Field(default_factory=utc_now)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    _tz = field_validator("created_at")(_aware)


class Decision(_Model):
    """What a stage decided about a record, by whom and why (routing, consensus, adjudication)."""

    outcome: str  # e.g. "accept", "reject", "human"; or the resolved label
    by: str  # the policy, aggregation method or person that decided
    reason: str = ""
    details: dict[str, JsonValue] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)

    _tz = field_validator("created_at")(_aware)


# Ids on disk depend on these exact bytes: any change to them changes every record's id.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The quick path in message_dict knows these fields; should Message gain one, every
# message takes the slow path instead of losing the new field from the id.
_FAST_MESSAGES = set(Message.model_fields) == {
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
}


def message_dict(m: Message) -> dict[str, Any]:
    """``m.model_dump(mode="json", exclude_none=True)``, quicker for plain text turns (ids and
    request bodies are built from it)."""
    if (
        _FAST_MESSAGES
        and m.content is not None
        and m.name is None
        and m.tool_calls is None
        and m.tool_call_id is None
    ):
        return {"role": m.role, "content": m.content}
    return m.model_dump(mode="json", exclude_none=True)


def content_id(messages: list[Message]) -> str:
    """A stable hash of the conversation: the same example always gets the same id."""
    canonical = _CANONICAL.encode([message_dict(m) for m in messages])
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class Record(_Model):
    id: str = ""
    messages: list[Message] = Field(min_length=1)
    candidates: list[Candidate] = Field(default_factory=list)
    task: str | None = None
    domain: str | None = None
    language: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    provenance: Provenance
    checks: dict[str, CheckResult] = Field(default_factory=dict)
    annotations: list[Annotation] = Field(default_factory=list)
    decisions: dict[str, Decision] = Field(default_factory=dict)  # by stage: "route", "resolve"

    @model_validator(mode="after")
    def _fill_id(self) -> Record:
        if not self.id:
            self.id = content_id(self.messages)
        return self

    @property
    def prompt(self) -> list[Message]:
        """The conversation up to (not including) the final assistant turn."""
        if self.messages[-1].role == "assistant":
            return self.messages[:-1]
        return self.messages

    @property
    def response(self) -> str | None:
        """The final assistant turn's text, if the conversation ends with one."""
        last = self.messages[-1]
        return last.content if last.role == "assistant" else None

    def with_check(self, name: str, result: CheckResult) -> Record:
        return self.model_copy(update={"checks": {**self.checks, name: result}})

    def with_decision(self, stage: str, decision: Decision) -> Record:
        return self.model_copy(update={"decisions": {**self.decisions, stage: decision}})
