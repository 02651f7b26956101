"""What a generation run made, in the words a user reads its summary in.

A family yields records or the :class:`LLMError` that ended an item. Three kinds of
ending are told apart, because they call for different action:

- ``parse_failures``: the model's answer could not be read as what was asked for (no
  JSON, JSON of the wrong shape, an empty part, a tool call its tool's schema refuses):
  a weak model or a too-strict schema;
- ``call_errors``: the call itself failed (timeout, HTTP error, a prompt longer than the
  context): the backend or the recipe's limits;
- ``rejected``: the family read the answer and turned it down by design (a near copy of
  the pool, an evolution that changed nothing, a refusal to write the task).

A record whose verification failed (tests that do not pass, a quote not found in its
chunk, the wrong language) is none of these: it is kept, with its check failed, so that
checks, routing and humans can act on it; ``verification`` counts each check's verdicts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pydantic import JsonValue

from datamill.errors import LLMError
from datamill.records import Record

# A tool call that breaks its tool's schema and a conversation of the wrong shape are
# malformed structured output too.
PARSE_CAUSES = frozenset({"invalid_output", "invalid_tool_call", "invalid_conversation"})
CALL_CAUSES = frozenset(
    {"timeout", "connection", "redirect", "rate_limited", "bad_response", "context_length"}
)


def kind_of(cause: str) -> str:
    """``parse_failures``, ``call_errors`` or ``rejected``: the kind of an item's failure."""
    if cause in PARSE_CAUSES:
        return "parse_failures"
    if cause in CALL_CAUSES or cause.startswith("http_"):
        return "call_errors"
    return "rejected"


@dataclass
class Tally:
    """Counts of a run: records kept and their checks' verdicts, failures by cause."""

    kept: int = 0
    verification_failed: int = 0
    checks: dict[str, Counter[str]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)

    def record(self, record: Record) -> None:
        self.kept += 1
        failed = False
        for name, result in record.checks.items():
            verdict = {True: "passed", False: "failed", None: "no_verdict"}[result.passed]
            self.checks.setdefault(name, Counter())[verdict] += 1
            failed = failed or result.passed is False
        self.verification_failed += failed

    def failure(self, error: LLMError) -> None:
        self.failures[error.cause] += 1

    def as_dict(self) -> dict[str, JsonValue]:
        kinds: Counter[str] = Counter()
        for cause, count in self.failures.items():
            kinds[kind_of(cause)] += count
        return {
            "kept": self.kept,
            "verification_failed": self.verification_failed,
            "verification": {
                name: {k: counts[k] for k in ("passed", "failed", "no_verdict")}
                for name, counts in sorted(self.checks.items())
            },
            **{k: kinds[k] for k in ("parse_failures", "rejected", "call_errors")},
        }
