"""What kind of answer each question takes, and checking answers against it.

Resolving needs to know, for every question, how its answers combine: a label is voted on,
a rating is averaged robustly, a ranking is fitted with Bradley–Terry. Kinds come from a
questions file (YAML or JSON: a mapping ``name: kind`` or ``name: {kind, labels, scale,
criteria}``, or a list of such objects with a ``name``; an annotation project's own list of
questions with ``type`` is accepted as is) or, without one, are inferred from the answers'
shapes: a number is a rating, a mapping of numbers a rubric, a list of strings a set of
labels, a list of integers a ranking, a short one-line string a label, a longer one a text.

Answer shapes, per kind:

=========== ================================================================
label       a string, integer or boolean
pairwise    the preferred side (``"A"``, ``"B"``, ``"tie"``, a candidate index or id),
            a mapping with it under ``choice``, or the annotation app's stored form
            ``{chosen, rejected, tie, strength}``
rating      a number (within ``scale`` when one is given)
rubric      a mapping from criterion to number (within ``scale``)
multilabel  a list of distinct strings
ranking     a list of distinct candidate indices or ids, best first
text        a string, a mapping with ``text`` (a rewrite), or a list of messages
comment     a string; collected, never voted on
spans       a list of ``{start, end, label?, message?}`` character ranges
=========== ================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError, model_validator

from datamill.annotate.questions import RESOLVE_KINDS, QuestionConfigError, parse_questions
from datamill.errors import DatamillError, InputError, validation_error
from datamill.yamlfile import read_yaml

Kind = Literal[
    "label", "pairwise", "rating", "rubric", "multilabel", "ranking", "text", "comment", "spans"
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
ALIASES = {
    **RESOLVE_KINDS,  # the annotation app's question types: one source of truth
    "single_label": "label",
    "choice": "label",
    "multi_label": "multilabel",
    "tags": "multilabel",
    "rubric_rating": "rubric",
    "preference": "pairwise",
    "rank": "ranking",
    "rewrite": "text",
    "response": "text",
    "free_text": "comment",
    "highlight": "spans",
}
SHORT_LABEL = 100  # characters: a longer (or multi-line) string answer is a text


class Question(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a project's question carries more (anchors…)

    name: str
    kind: Kind
    labels: list[str | int | bool] | None = None  # allowed labels / choices / tags
    scale: tuple[float, float] | None = None  # (lowest, highest) for ratings and rubrics
    criteria: list[str] | None = None  # rubric criteria
    level: Literal["ordinal", "interval"] = "interval"  # how ratings are measured
    inferred: bool = False

    @model_validator(mode="before")
    @classmethod
    def _project_form(cls, data: object) -> object:
        """Also read an annotation project's question config: ``type``, ``options``, a
        rubric's ``scale: 5`` (meaning 1–5) and criteria as ``{name, description}``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        kind = data.pop("type", None) if "kind" not in data else data["kind"]
        data["kind"] = ALIASES.get(str(kind), kind)
        if "options" in data and "labels" not in data:
            data["labels"] = data.pop("options")
        if isinstance(data.get("scale"), int):
            data["scale"] = (1, data["scale"])
        if isinstance(data.get("criteria"), list):
            data["criteria"] = [
                c.get("name") if isinstance(c, dict) else c for c in data["criteria"]
            ]
        return data


def load_questions(path: Path) -> dict[str, Question]:
    """Read a questions file; errors name the file and the question."""
    raw = read_yaml(path)
    if isinstance(raw, dict) and isinstance(raw.get("questions"), list | dict):
        raw = raw["questions"]
    if isinstance(raw, dict):
        raw = [{"name": k, **(v if isinstance(v, dict) else {"kind": v})} for k, v in raw.items()]
    if not isinstance(raw, list) or not raw:
        raise InputError(str(path), None, None, "expected a mapping or a list of questions")
    out: dict[str, Question] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise InputError(str(path), None, f"[{i}]", "a question must be a mapping")
        try:
            question = Question.model_validate(entry)
        except ValidationError as e:
            raise validation_error(str(path), e, prefix=str(entry.get("name", f"[{i}]"))) from None
        if any(isinstance(label, bool) for label in question.labels or []):
            raise InputError(
                str(path),
                None,
                f"{question.name}.labels",
                "YAML reads yes/no/on/off as true/false; quote labels that are words",
            )
        if question.name in out:
            raise InputError(str(path), None, question.name, "question named twice")
        out[question.name] = question
    return out


def from_project(configs: object, where: str) -> dict[str, Question]:
    """The questions of an annotation project's config list (as the app stores it), checked
    by the app's own parser first."""
    try:
        parse_questions(configs)
    except QuestionConfigError as e:
        raise InputError(where, None, None, str(e)) from None
    return {c["name"]: Question.model_validate(c) for c in configs}  # type: ignore[attr-defined]


class AnswerError(DatamillError):
    """An annotation that does not fit its question."""


def infer(name: str, value: JsonValue) -> Question:
    """The kind a value's shape suggests (see the module docstring)."""
    kind: str | None = None
    if isinstance(value, bool):
        kind = "label"
    elif isinstance(value, int | float):
        kind = "rating"
    elif isinstance(value, str):
        kind = "label" if _short(value) else "text"
    elif isinstance(value, dict):
        if "choice" in value or "chosen" in value:
            kind = "pairwise"
        elif "text" in value:
            kind = "text"
        elif value and all(_number(v) for v in value.values()):
            kind = "rubric"
    elif isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            kind = "multilabel"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            kind = "ranking"
        elif all(isinstance(v, dict) and "start" in v for v in value):
            kind = "spans"
        elif all(isinstance(v, dict) and "role" in v for v in value):
            kind = "text"
    if kind is None:
        raise AnswerError(f"cannot tell what kind of question '{name}' is from {_show(value)}")
    return Question(name=name, kind=kind, inferred=True)  # type: ignore[arg-type]


def check(question: Question, value: JsonValue, text_lengths: list[int]) -> JsonValue:
    """The value in the form aggregation uses, or AnswerError saying what is wrong.

    ``text_lengths`` are the lengths of the record's messages, for span offsets."""
    kind = question.kind
    if kind in ("label", "pairwise"):
        key = vote_key(value) if kind == "pairwise" else value
        if not _scalar(key):
            raise AnswerError(f"a {kind} answer must be a string or integer, not {_show(value)}")
        _allowed(question, [key])
        return value
    if kind == "rating":
        return _in_scale(question, value, "a rating")
    if kind == "rubric":
        if not isinstance(value, dict) or not value:
            raise AnswerError(f"a rubric answer must map criteria to numbers, not {_show(value)}")
        unknown = [c for c in value if question.criteria and c not in question.criteria]
        if unknown:
            raise AnswerError(f"unknown rubric criterion '{unknown[0]}'")
        return {c: _in_scale(question, v, f"criterion '{c}'") for c, v in value.items()}
    if kind in ("multilabel", "ranking"):
        if not isinstance(value, list) or not all(_scalar(v) for v in value):
            raise AnswerError(f"a {kind} answer must be a list, not {_show(value)}")
        if len(set(value)) != len(value):  # type: ignore[arg-type]
            raise AnswerError(f"a {kind} answer names something twice: {_show(value)}")
        if kind == "multilabel":
            _allowed(question, value)
        return value
    if kind == "text":
        return _text(value)
    if kind == "comment":
        if not isinstance(value, str):
            raise AnswerError(f"a comment must be a string, not {_show(value)}")
        return value
    return _spans(value, text_lengths)


def vote_key(value: JsonValue) -> JsonValue:
    """What a pairwise answer votes for: the chosen side or candidate, or ``"tie"``."""
    if not isinstance(value, dict):
        return value
    if "choice" in value:
        return value["choice"]
    if value.get("tie") is True:
        return "tie"
    return value.get("chosen")


def text_of(value: JsonValue) -> str:
    """The text a text answer stands for (a rewrite's text, a conversation's turns)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value["text"])
    assert isinstance(value, list)
    return "\n".join(f"{m['role']}: {m.get('content') or ''}" for m in value)  # type: ignore[index, union-attr]


def _text(value: JsonValue) -> JsonValue:
    ok = isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("text"), str))
    if isinstance(value, list) and value:
        ok = all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in value
        )
    if not ok:
        raise AnswerError(f"a text answer must be a string, {{text}} or messages: {_show(value)}")
    return value


def _spans(value: JsonValue, text_lengths: list[int]) -> JsonValue:
    if not isinstance(value, list):
        raise AnswerError(f"a spans answer must be a list, not {_show(value)}")
    for span in value:
        if not isinstance(span, dict):
            raise AnswerError(f"a span must be a mapping, not {_show(span)}")
        start, end, message = span.get("start"), span.get("end"), span.get("message", -1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, message)):
            raise AnswerError(f"a span needs integer start, end (and message): {_show(span)}")
        assert isinstance(start, int) and isinstance(end, int) and isinstance(message, int)
        if not -len(text_lengths) <= message < len(text_lengths):
            raise AnswerError(f"span names message {message}; the record has {len(text_lengths)}")
        if not 0 <= start < end <= text_lengths[message]:
            raise AnswerError(
                f"span {start}–{end} is outside message {message} "
                f"({text_lengths[message]} characters)"
            )
    return value


def _in_scale(question: Question, value: JsonValue, what: str) -> float:
    if not _number(value):
        raise AnswerError(f"{what} must be a number, not {_show(value)}")
    assert isinstance(value, int | float)
    if question.scale and not question.scale[0] <= value <= question.scale[1]:
        low, high = question.scale
        raise AnswerError(f"{what} {value} is outside the scale {low:g}–{high:g}")
    return float(value)


def _allowed(question: Question, values: list[JsonValue]) -> None:
    if question.labels is None:
        return
    for v in values:
        if v not in question.labels:
            raise AnswerError(f"{_show(v)} is not one of {question.labels}")


def _scalar(value: JsonValue) -> bool:
    return isinstance(value, str | int) and not isinstance(value, float)


def _number(value: JsonValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _short(value: str) -> bool:
    return len(value) <= SHORT_LABEL and "\n" not in value


def _show(value: JsonValue) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
