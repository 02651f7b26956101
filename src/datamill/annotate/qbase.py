"""What every question type shares: the view an answer is checked against, limits,
default options, strict parsing that names the question and field."""

from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticError

from datamill.annotate.errors import AnswerError

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


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)  # built once per type: building one costs more than a check


def parse_strict(kind: Any, value: Any, question: str) -> Any:
    """``value`` as the type ``kind``, strictly, or AnswerError naming the field."""
    try:
        return _adapter(kind).validate_python(value, strict=True)
    except PydanticError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise AnswerError(question, field, first["msg"]) from None


class QuestionBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # How resolve combines answers to this type (``quality.questions.Kind``).
    kind: ClassVar[str]

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


def parse_text(question: str, value: Any, max_chars: int, min_chars: int) -> str:
    text = parse_strict(StrictStr, value, question)
    if len(text) > max_chars:
        raise AnswerError(question, None, f"{len(text)} characters; at most {max_chars}")
    if len(text.strip()) < min_chars:
        raise AnswerError(question, None, f"at least {min_chars} characters")
    return text
