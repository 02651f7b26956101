"""What a call came to: its outcome, the usage behind a record, and a run's summary.

An :class:`Outcome` is data, not an exception: a failed call carries its error and the run
goes on. :class:`RunStats` counts outcomes by cause, with the tokens, cost and time they
used; :func:`usage_of` adds up the calls behind one record for its provenance.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datamill.errors import LLMError
from datamill.llm.base import ChatRequest, Completion
from datamill.records import Usage


@dataclass
class Outcome:
    request: ChatRequest
    completion: Completion | None = None
    error: LLMError | None = None
    attempts: int = 0
    cached: bool = False
    cost: float | None = None
    parsed: Any = None  # the validated object, for structured output
    # Structured output: the calls whose answers were rejected as invalid before this one.
    rejected: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def samples(request: ChatRequest, n: int) -> list[ChatRequest]:
    """``n`` requests for ``n`` independent samples of one prompt.

    Each gets its own seed, so each is reproducible and cached on its own; it works with
    every server, including those that ignore the ``n`` parameter.
    """
    base = request.seed or 0
    return [request.model_copy(update={"seed": base + i}) for i in range(n)]


def usage_of(*outcomes: Outcome) -> Usage:
    """The calls behind one record, added up, rejected structured answers included (cached
    answers count what they first cost)."""
    calls = [c for o in outcomes for c in (*o.rejected, o)]
    done = [c.completion for c in calls if c.completion is not None]
    costs = [c.cost for c in calls if c.cost is not None]
    return Usage(
        calls=len(done),
        prompt_tokens=sum(c.prompt_tokens for c in done),
        completion_tokens=sum(c.completion_tokens for c in done),
        seconds=round(sum(c.seconds for c in done), 6),
        cost=sum(costs) if costs else None,
    )


@dataclass
class RunStats:
    """What a run did: counts by outcome and cause, tokens, cost and time."""

    requests: int = 0
    succeeded: int = 0
    cached: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0
    llm_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def add(self, outcome: Outcome) -> None:
        self.requests += 1
        if outcome.error is not None:
            self.failures[outcome.error.cause] += 1
        else:
            self.succeeded += 1
        if outcome.cached:
            self.cached += 1
        self.charge(outcome)

    def charge(self, outcome: Outcome) -> None:
        """Count what the calls behind ``outcome`` used (its rejected answers too), but not
        answers that came from the cache."""
        for call in (*outcome.rejected, outcome):
            if call.cached or call.completion is None:
                continue
            self.prompt_tokens += call.completion.prompt_tokens
            self.completion_tokens += call.completion.completion_tokens
            self.llm_seconds += call.completion.seconds
            if call.cost is None:
                self.unpriced += 1
            else:
                self.cost += call.cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "cached": self.cached,
            "retries": dict(self.retries),
            "failures": dict(self.failures),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost, 6),
            "unpriced_calls": self.unpriced,
            "llm_seconds": round(self.llm_seconds, 3),
            "wall_seconds": round(time.perf_counter() - self.started, 3),
        }


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json(text: str) -> Any:
    """JSON from model output, leniently: code fences and raw newlines in strings are allowed."""
    match = _FENCE.match(text)
    return json.loads(match.group(1) if match else text, strict=False)
