"""Question types: what a project asks about an item, and how an answer is checked.

A project's ``questions`` is a list of configs, each a model below picked by ``type``.
``validate_answers`` checks a submission against them on the server and returns the answers
as they are stored: pairwise and ranking answers arrive in screen terms (A/B, positions on
screen) and are stored in the record's candidate indices, through the assignment's display
order; an edit is stored with its unified diff from the original.

Answer shapes, as the client sends them:

=============  ==========================================================================
rubric         ``{"accuracy": 4, "helpfulness": 5, ...}`` one integer per criterion
pairwise       ``{"choice": "A" | "B" | "tie", "strength": 1..strengths}``
ranking        ``[2, 0, 1]`` screen positions, best first
edit           ``"the rewritten response"``
write          ``"a new response"``
conversation   ``[{"role": "user", "content": "..."}, {"role": "assistant", ...}, ...]``
label          ``"violence"``
multilabel     ``["sarcasm", "humour"]``
comment        ``"free text"``
span           ``[{"message": 1, "start": 0, "end": 12, "label": "hallucination"}]``
=============  ==========================================================================
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    model_validator,
)
from pydantic import ValidationError as PydanticError

from datamill.annotate.errors import AnnotateError, AnswerError

MAX_TEXT = 50_000  # characters in one written answer
MAX_ITEMS = 200  # labels, spans, turns, criteria in one answer

RUBRIC_CRITERIA = ("accuracy", "helpfulness", "truthfulness", "safety", "completeness", "tone")
SAFETY_LABELS = (
    "safe",
    "violence",
    "self_harm",
    "sexual",
    "hate",
    "harassment",
    "illegal_activity",
    "privacy",
    "misinformation",
    "other_unsafe",
)
NUANCE_TAGS = ("sarcasm", "humour", "emotional_tone", "ambiguous_intent", "ethical_concern")

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Text = Annotated[StrictStr, Field(max_length=MAX_TEXT)]


class View(BaseModel):
    """What an answer is checked against: the item's texts and the screen order."""

    messages: list[str]  # contents of the item's messages, in order
    candidates: list[str]
    display_order: list[int]  # screen position -> candidate index

    @classmethod
    def of(cls, payload: dict[str, Any], display_order: list[int]) -> View:
        return cls(
            messages=[m.get("content") or "" for m in payload.get("messages", [])],
            candidates=[c.get("content", "") for c in payload.get("candidates", [])],
            display_order=display_order,
        )


def _parse(adapter: TypeAdapter[Any], value: Any, question: str) -> Any:
    try:
        return adapter.validate_python(value, strict=True)
    except PydanticError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise AnswerError(question, field, first["msg"]) from None


class _Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    title: str = Field(default="", max_length=500)
    help: str = Field(default="", max_length=5000)
    required: bool = True

    def store(self, value: Any, view: View) -> Any:
        """The answer as stored, or AnswerError."""
        raise NotImplementedError

    def needs_candidates(self) -> int:
        """How many candidate responses an item must have for this question."""
        return 0


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    description: str = Field(default="", max_length=1000)


class Rubric(_Question):
    type: Literal["rubric"] = "rubric"
    criteria: list[Criterion] = Field(
        default_factory=lambda: [Criterion(name=c) for c in RUBRIC_CRITERIA],
        min_length=1,
        max_length=30,
    )
    scale: Literal[5, 7] = 5
    anchors: dict[int, str] = Field(default_factory=dict)  # e.g. {1: "wrong", 5: "perfect"}

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        bad = [k for k in self.anchors if not 1 <= k <= self.scale]
        if bad:
            raise ValueError(f"anchor {bad[0]} is outside the scale 1..{self.scale}")
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise ValueError("criteria names must be unique")
        return self

    def store(self, value: Any, view: View) -> Any:
        scores = _parse(TypeAdapter(dict[str, StrictInt]), value, self.name)
        names = {c.name for c in self.criteria}
        for key, score in scores.items():
            if key not in names:
                raise AnswerError(self.name, key, f"unknown criterion; known: {sorted(names)}")
            if not 1 <= score <= self.scale:
                raise AnswerError(self.name, key, f"{score} is outside 1..{self.scale}")
        missing = [c.name for c in self.criteria if c.name not in scores]
        if missing:
            raise AnswerError(self.name, missing[0], "no score given")
        return scores


class PairwiseAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choice: Literal["A", "B", "tie"]
    strength: StrictInt | None = None


class Pairwise(_Question):
    type: Literal["pairwise"] = "pairwise"
    allow_tie: bool = True
    strengths: int = Field(default=3, ge=1, le=5)  # 1: slightly better .. strengths: much

    def needs_candidates(self) -> int:
        return 2

    def store(self, value: Any, view: View) -> Any:
        answer = _parse(TypeAdapter(PairwiseAnswer), value, self.name)
        a, b = view.display_order[0], view.display_order[1]
        if answer.choice == "tie":
            if not self.allow_tie:
                raise AnswerError(self.name, "choice", "this question allows no tie")
            return {"chosen": None, "rejected": None, "tie": True, "strength": None, "pair": [a, b]}
        strength = answer.strength if answer.strength is not None else 1
        if not 1 <= strength <= self.strengths:
            raise AnswerError(self.name, "strength", f"{strength} is outside 1..{self.strengths}")
        chosen, rejected = (a, b) if answer.choice == "A" else (b, a)
        return {
            "chosen": chosen,
            "rejected": rejected,
            "tie": False,
            "strength": strength,
            "pair": [a, b],
        }


class Ranking(_Question):
    type: Literal["ranking"] = "ranking"

    def needs_candidates(self) -> int:
        return 2

    def store(self, value: Any, view: View) -> Any:
        order = _parse(TypeAdapter(list[StrictInt]), value, self.name)
        shown = len(view.display_order)
        if sorted(order) != list(range(shown)):
            raise AnswerError(
                self.name, None, f"rank every one of the {shown} responses once (positions 0..)"
            )
        return [view.display_order[position] for position in order]


class Edit(_Question):
    type: Literal["edit"] = "edit"
    candidate: int | None = Field(default=None, ge=0)  # None: the final assistant message
    max_chars: int = Field(default=20_000, ge=1, le=MAX_TEXT)

    def original(self, view: View) -> str:
        if self.candidate is not None:
            return view.candidates[self.candidate]
        return view.messages[-1]

    def needs_candidates(self) -> int:
        return 0 if self.candidate is None else self.candidate + 1

    def store(self, value: Any, view: View) -> Any:
        text = _text(self.name, value, self.max_chars, 1)
        before = self.original(view)
        diff = difflib.unified_diff(
            before.splitlines(keepends=True),
            text.splitlines(keepends=True),
            "original",
            "edited",
        )
        return {"text": text, "diff": "".join(diff)}


def _text(question: str, value: Any, max_chars: int, min_chars: int) -> str:
    text = _parse(TypeAdapter(StrictStr), value, question)
    if len(text) > max_chars:
        raise AnswerError(question, None, f"{len(text)} characters; at most {max_chars}")
    if len(text.strip()) < min_chars:
        raise AnswerError(question, None, f"at least {min_chars} characters")
    return text


class Write(_Question):
    type: Literal["write"] = "write"
    min_chars: int = Field(default=1, ge=0)
    max_chars: int = Field(default=20_000, ge=1, le=MAX_TEXT)

    def store(self, value: Any, view: View) -> Any:
        return _text(self.name, value, self.max_chars, self.min_chars)


class Comment(Write):
    type: Literal["comment"] = "comment"  # type: ignore[assignment]
    required: bool = False
    min_chars: int = Field(default=0, ge=0)


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: Text


class Conversation(_Question):
    type: Literal["conversation"] = "conversation"
    min_turns: int = Field(default=2, ge=1, le=MAX_ITEMS)
    max_turns: int = Field(default=20, ge=1, le=MAX_ITEMS)

    def store(self, value: Any, view: View) -> Any:
        turns = _parse(TypeAdapter(list[Turn]), value, self.name)
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


class Label(_Question):
    type: Literal["label"] = "label"
    options: list[Name] = Field(default_factory=lambda: list(SAFETY_LABELS), min_length=1)

    def store(self, value: Any, view: View) -> Any:
        label = _parse(TypeAdapter(StrictStr), value, self.name)
        if label not in self.options:
            raise AnswerError(self.name, None, f"unknown option {label[:100]!r}")
        return label


class MultiLabel(_Question):
    type: Literal["multilabel"] = "multilabel"
    options: list[Name] = Field(default_factory=lambda: list(NUANCE_TAGS), min_length=1)
    required: bool = False  # choosing nothing is an answer

    def store(self, value: Any, view: View) -> Any:
        labels = _parse(TypeAdapter(list[StrictStr]), value, self.name)
        for i, label in enumerate(labels):
            if label not in self.options:
                raise AnswerError(self.name, str(i), f"unknown option {label[:100]!r}")
        if len(set(labels)) != len(labels):
            raise AnswerError(self.name, None, "an option is chosen twice")
        return labels


class SpanAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: StrictInt
    start: StrictInt
    end: StrictInt
    label: StrictStr


class Span(_Question):
    type: Literal["span"] = "span"
    labels: list[Name] = Field(default_factory=lambda: ["hallucination"], min_length=1)
    required: bool = False  # no span marked is an answer

    def store(self, value: Any, view: View) -> Any:
        spans = _parse(TypeAdapter(list[SpanAnswer]), value, self.name)
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


Question = Annotated[
    Rubric | Pairwise | Ranking | Edit | Write | Conversation | Label | MultiLabel | Comment | Span,
    Field(discriminator="type"),
]
_questions = TypeAdapter(list[Question])


class QuestionConfigError(AnnotateError):
    pass


def parse_questions(raw: Any) -> list[Question]:
    """Validate a project's question configs; names must be unique."""
    try:
        questions = _questions.validate_python(raw)
    except PydanticError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise QuestionConfigError(f"questions.{where}: {first['msg']}") from None
    if not questions:
        raise QuestionConfigError("a project needs at least one question")
    names = [q.name for q in questions]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise QuestionConfigError(f"two questions are named {duplicate!r}")
    return questions


def needs_candidates(questions: list[Question]) -> int:
    return max(q.needs_candidates() for q in questions)


def validate_answers(questions: list[Question], answers: Any, view: View) -> dict[str, Any]:
    """Check every answer against its question; return them as stored."""
    if not isinstance(answers, dict):
        raise AnswerError("*", None, "answers must be an object keyed by question name")
    by_name = {q.name: q for q in questions}
    for name in answers:
        if name not in by_name:
            raise AnswerError(str(name)[:100], None, "no such question in this project")
    stored: dict[str, Any] = {}
    for q in questions:
        if answers.get(q.name) is None:
            if q.required:
                raise AnswerError(q.name, None, "an answer is required")
            continue
        stored[q.name] = q.store(answers[q.name], view)
    return stored


def written_chars(questions: list[Question], answers: dict[str, Any]) -> int:
    """How many characters the annotator wrote (edits, responses, conversations, comments)."""
    total = 0
    for q in questions:
        value = answers.get(q.name)
        if value is None:
            continue
        if isinstance(q, Edit):  # only what the edit added
            total += sum(
                len(line) - 1
                for line in value["diff"].splitlines()
                if line.startswith("+") and not line.startswith("+++")
            )
        elif isinstance(q, Write):
            total += len(value)
        elif isinstance(q, Conversation):
            total += sum(len(t["content"]) for t in value)
    return total


def matches_gold(questions: list[Question], stored: dict[str, Any], gold: dict[str, Any]) -> bool:
    """Whether a gold item's answers agree with its gold answers (both in stored form).

    Ratings may be one step off; written answers and spans are not compared.
    """
    for q in questions:
        if q.name not in gold or q.name not in stored:
            continue
        mine, expected = stored[q.name], gold[q.name]
        if isinstance(q, Rubric):
            if any(abs(mine.get(k, 0) - v) > 1 for k, v in expected.items()):
                return False
        elif isinstance(q, Pairwise):
            if (mine["chosen"], mine["tie"]) != (
                expected.get("chosen"),
                expected.get("tie", False),
            ):
                return False
        elif isinstance(q, MultiLabel):
            if set(mine) != set(expected):
                return False
        elif isinstance(q, Ranking | Label) and mine != expected:
            return False
    return True
