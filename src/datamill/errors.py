"""Every error datamill raises on purpose.

DatamillError                 base: the CLI prints its message as one line
├── InputError                bad input data: names the file, line and field
├── DatasetError              a dataset directory is missing, corrupt or busy
└── MissingDependency         an optional extra is not installed: says what to install
"""

from __future__ import annotations


class DatamillError(Exception):
    """An error the user can act on; its message says what went wrong and where."""


class InputError(DatamillError):
    def __init__(self, file: str, line: int | None, field: str | None, reason: str) -> None:
        self.file, self.line, self.field, self.reason = file, line, field, reason
        where = file if line is None else f"{file}:{line}"
        what = f"field '{field}': {reason}" if field else reason
        super().__init__(f"{where}: {what}")


class DatasetError(DatamillError):
    pass


class MissingDependency(DatamillError):
    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed; run: {install}")
