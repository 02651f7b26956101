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

from typing import Annotated, Any

from pydantic import Field, TypeAdapter
from pydantic import ValidationError as PydanticError

from datamill.annotate.errors import AnnotateError, AnswerError
from datamill.annotate.qbase import NUANCE_TAGS, RUBRIC_CRITERIA, SAFETY_LABELS, View
from datamill.annotate.qchoice import Label, MultiLabel, Pairwise, Ranking, Rubric
from datamill.annotate.qtext import Comment, Conversation, Edit, Span, Write

__all__ = [
    "NUANCE_TAGS",
    "RESOLVE_KINDS",
    "RUBRIC_CRITERIA",
    "SAFETY_LABELS",
    "TYPES",
    "Comment",
    "Conversation",
    "Edit",
    "Label",
    "MultiLabel",
    "Pairwise",
    "Question",
    "QuestionConfigError",
    "Ranking",
    "Rubric",
    "Span",
    "View",
    "Write",
    "matches_gold",
    "needs_candidates",
    "parse_questions",
    "validate_answers",
    "written_chars",
]

TYPES = (Rubric, Pairwise, Ranking, Edit, Write, Conversation, Label, MultiLabel, Comment, Span)
Question = Annotated[
    Rubric | Pairwise | Ranking | Edit | Write | Conversation | Label | MultiLabel | Comment | Span,
    Field(discriminator="type"),
]
_questions = TypeAdapter(list[Question])
# Question type -> how resolve combines its answers (``quality.questions.Kind``).
RESOLVE_KINDS: dict[str, str] = {t.model_fields["type"].default: t.kind for t in TYPES}


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
