"""Errors of the annotation store, shaped after the HTTP answers the web layer gives.

AnnotateError (a DatamillError)
├── NotFound       404: no such user, project, item or assignment (or not yours to see)
├── Forbidden      403: not a member, lacks the expertise, inactive, wrong role
│   └── NotAMember     not a member of the project (the API answers 404: it hides it)
├── Conflict       409: already submitted, lease taken by someone else, name taken
└── AnswerError    422: an answer does not fit its question (names question and field)
"""

from __future__ import annotations

from datamill.errors import DatamillError


class AnnotateError(DatamillError):
    pass


class NotFound(AnnotateError):
    pass


class Forbidden(AnnotateError):
    pass


class NotAMember(Forbidden):
    pass


class Conflict(AnnotateError):
    pass


class AnswerError(AnnotateError):
    """An answer that does not fit its question; names the question and the field."""

    def __init__(self, question: str, field: str | None, reason: str) -> None:
        self.question, self.field, self.reason = question, field, reason
        where = f"question '{question}'" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {reason}")
