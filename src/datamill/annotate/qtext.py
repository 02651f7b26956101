"""Questions answered by writing or marking text: edit, write, comment, conversation, spans."""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from datamill.annotate.errors import AnswerError
from datamill.annotate.qbase import (
    MAX_ITEMS,
    MAX_TEXT,
    Name,
    QuestionBase,
    Text,
    View,
    parse_strict,
    parse_text,
)


class Edit(QuestionBase):
    type: Literal["edit"] = "edit"
    kind = "text"
    candidate: int | None = Field(default=None, ge=0)  # None: the final assistant message
    max_chars: int = Field(default=20_000, ge=1, le=MAX_TEXT)

    def original(self, view: View) -> str:
        if self.candidate is not None:
            return view.candidates[self.candidate]
        return view.messages[-1]

    def needs_candidates(self) -> int:
        return 0 if self.candidate is None else self.candidate + 1

    def store(self, value: Any, view: View) -> Any:
        text = parse_text(self.name, value, self.max_chars, 1)
        before = self.original(view)
        diff = difflib.unified_diff(
            before.splitlines(keepends=True),
            text.splitlines(keepends=True),
            "original",
            "edited",
        )
        return {"text": text, "diff": "".join(diff)}


class Write(QuestionBase):
    type: Literal["write"] = "write"
    kind = "text"
    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=20_000, ge=1, le=MAX_TEXT)

    def store(self, value: Any, view: View) -> Any:
        return parse_text(self.name, value, self.max_chars, self.min_chars)


class Comment(Write):
    type: Literal["comment"] = "comment"  # type: ignore[assignment]
    kind = "comment"
    required: bool = False
    min_chars: int = Field(default=0, ge=0)


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: Text


class Conversation(QuestionBase):
    type: Literal["conversation"] = "conversation"
    kind = "text"
    min_turns: int = Field(default=2, ge=1, le=MAX_ITEMS)
    max_turns: int = Field(default=20, ge=1, le=MAX_ITEMS)

    def store(self, value: Any, view: View) -> Any:
        turns = parse_strict(list[Turn], value, self.name)
        if not self.min_turns <= len(turns) <= self.max_turns:
            raise AnswerError(
                self.name, None, f"{len(turns)} turns; {self.min_turns}..{self.max_turns} allowed"
            )
        for i, turn in enumerate(turns):
            expected = "user" if i % 2 == 0 else "assistant"
            if turn.role != expected:
                raise AnswerError(self.name, f"{i}.role", f"turns alternate; expected {expected}")
            if not turn.content.strip():
                raise AnswerError(self.name, f"{i}.content", "empty turn")
        return [t.model_dump() for t in turns]


class SpanAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: StrictInt
    start: StrictInt
    end: StrictInt
    label: StrictStr


class Span(QuestionBase):
    type: Literal["span"] = "span"
    kind = "spans"
    labels: list[Name] = Field(default_factory=lambda: ["hallucination"], min_length=1)
    required: bool = False  # no span marked is an answer

    def store(self, value: Any, view: View) -> Any:
        spans = parse_strict(list[SpanAnswer], value, self.name)
        if len(spans) > MAX_ITEMS:
            raise AnswerError(self.name, None, f"{len(spans)} spans; at most {MAX_ITEMS}")
        for i, span in enumerate(spans):
            if not 0 <= span.message < len(view.messages):
                raise AnswerError(self.name, f"{i}.message", f"no message {span.message}")
            length = len(view.messages[span.message])
            if not 0 <= span.start < span.end <= length:
                raise AnswerError(
                    self.name,
                    f"{i}.start",
                    f"span {span.start}..{span.end} is not within the message (0..{length})",
                )
            if span.label not in self.labels:
                raise AnswerError(self.name, f"{i}.label", f"unknown label {span.label[:100]!r}")
        return [s.model_dump() for s in spans]
