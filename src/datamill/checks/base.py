"""What a check is, and how checks are applied to a stream of records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal, Protocol

from datamill.records import CheckResult, Record

Part = Literal["prompt", "response", "conversation"]


class Check(Protocol):
    name: str

    def __call__(self, record: Record) -> CheckResult: ...


def text_of(record: Record, part: Part) -> str:
    """The text a check looks at: the prompt turns, the final response, or everything."""
    if part == "response":
        return record.response or ""
    messages = record.prompt if part == "prompt" else record.messages
    return "\n".join(m.content or "" for m in messages if m.role != "system")


def run_checks(records: Iterable[Record], checks: Iterable[Check]) -> Iterator[Record]:
    """Each record with every check's result added under the check's name."""
    checks = list(checks)
    for record in records:
        results = {check.name: check(record) for check in checks}
        yield record.model_copy(update={"checks": {**record.checks, **results}})


def passed(record: Record, names: Iterable[str] | None = None) -> bool:
    """True unless one of the named checks (all, by default) failed."""
    wanted = record.checks if names is None else {n: record.checks[n] for n in names}
    return all(result.passed is not False for result in wanted.values())
