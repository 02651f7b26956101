"""Every error datamill raises on purpose.

DatamillError                 base: the CLI prints its message as one line
├── InputError                bad input data: names the file, line and field
├── DatasetError              a dataset directory is missing, corrupt or busy
└── MissingDependency         an optional extra is not installed: says what to install
"""

from __future__ import annotations

from pydantic import ValidationError


class DatamillError(Exception):
    """An error the user can act on; its message says what went wrong and where."""


class InputError(DatamillError):
    def __init__(self, file: str, line: int | None, field: str | None, reason: str) -> None:
        self.file, self.line, self.field, self.reason = file, line, field, reason
        where = file if line is None else f"{file}:{line}"
        what = f"field '{field}': {reason}" if field else reason
        super().__init__(f"{where}: {what}")


def validation_error(file: str, error: ValidationError, prefix: str = "") -> InputError:
    """The first problem of a pydantic validation error, as an InputError naming the field."""
    first = error.errors()[0]
    loc = [prefix] if prefix else []
    loc += [str(part) for part in first["loc"]]
    return InputError(file, None, ".".join(loc) or None, first["msg"])


class DatasetError(DatamillError):
    pass


class LLMError(DatamillError):
    """One LLM call failed. ``cause`` is a short machine-readable reason (``rate_limited``,
    ``timeout``, ``http_400``, ``invalid_output``…); ``retryable`` says whether trying again
    may help; ``retry_after`` is the server's requested wait in seconds, if it gave one."""

    def __init__(
        self,
        cause: str,
        detail: str,
        retryable: bool = False,
        retry_after: float | None = None,
        raw: str | None = None,
    ) -> None:
        self.cause, self.detail, self.retryable = cause, detail, retryable
        self.retry_after, self.raw = retry_after, raw
        super().__init__(f"{cause}: {detail}")


class MissingDependency(DatamillError):
    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed; run: {install}")
