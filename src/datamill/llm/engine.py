"""The engine every LLM call goes through: cache, concurrency, rate limits, retries, accounting.

``Engine.map`` takes requests and yields one :class:`Outcome` per request, in input order,
keeping up to ``concurrency`` calls in flight. A failed call is an outcome with an error,
not an exception: the run goes on and the summary counts it by cause.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from datamill.errors import LLMError
from datamill.llm.base import Backend, ChatRequest, Completion
from datamill.llm.cache import RequestCache, cache_key
from datamill.llm.limits import RateLimits, Slots
from datamill.llm.prices import PriceTable
from datamill.llm.retry import RetryPolicy
from datamill.records import Usage

T = TypeVar("T", bound=BaseModel)

_LOOP_TURN = 0.002  # seconds of caller's work on ready outcomes before the loop gets a turn


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


class Engine:
    def __init__(
        self,
        backend: Backend,
        concurrency: int = 64,
        cache: RequestCache | None = None,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.backend = backend
        # The server's address is left out: the same model moved to another host or port
        # gives the same answers, and a restarted local server must not void the cache.
        self.identity = f"{backend.name}:{backend.model}"
        self.concurrency = concurrency
        self.cache = cache
        self.retry = retry or RetryPolicy()
        self.limits = limits
        self.prices = prices or PriceTable()
        self.stats = RunStats()
        self._slots = Slots(concurrency)
        self._in_flight: dict[str, asyncio.Future[Outcome | None]] = {}

    async def complete(self, request: ChatRequest) -> Outcome:
        """One call: from the cache if it was paid for before, else with limits and retries."""
        outcome = await self._complete(request)
        self.stats.add(outcome)
        return outcome

    async def _complete(self, request: ChatRequest) -> Outcome:
        """With a cache, identical requests in flight at once are sent once (single flight):
        the later callers wait for the first's answer and get it as a cached one, or share
        its failure."""
        if self.cache is None:
            return await self._call(request)
        key = cache_key(self.identity, request)
        while True:
            if (hit := self.cache.get(key)) is not None:
                return Outcome(request, hit, cached=True, cost=self._cost(hit))
            first = self._in_flight.get(key)
            if first is None:
                break
            shared = await asyncio.shield(first)
            if shared is not None and shared.error is not None:
                return Outcome(request, error=shared.error)
            # Answered (now in the cache), or the first caller was cancelled: look again.
        self._in_flight[key] = future = asyncio.get_running_loop().create_future()
        outcome = None
        try:
            outcome = await self._call(request)
            if outcome.completion is not None:
                self.cache.put(key, outcome.completion)
            return outcome
        finally:
            del self._in_flight[key]
            future.set_result(outcome)

    async def _call(self, request: ChatRequest) -> Outcome:
        outcome = Outcome(request)
        async with self._slots:
            while True:
                outcome.attempts += 1
                estimate = 0
                if self.limits is not None:
                    estimate = self._estimate(request)
                    await self.limits.acquire(estimate)
                try:
                    completion = await self.backend.complete(request)
                except LLMError as error:
                    if self.limits is not None:
                        self.limits.settle(estimate, 0)
                    if not self.retry.should_retry(outcome.attempts, error):
                        outcome.error = error
                        return outcome
                    self.stats.retries[error.cause] += 1
                    await asyncio.sleep(self.retry.delay(outcome.attempts, error))
                    continue
                if self.limits is not None:
                    used = completion.prompt_tokens + completion.completion_tokens
                    self.limits.settle(estimate, used)
                break
        outcome.completion, outcome.cost = completion, self._cost(completion)
        return outcome

    async def complete_json(
        self, request: ChatRequest, schema: type[T], attempts: int = 3
    ) -> Outcome:
        """Ask for JSON matching ``schema``; on invalid output ask again with another seed.

        After ``attempts`` invalid answers the outcome is an ``invalid_output`` failure that
        keeps the last raw text.
        """
        request = request.model_copy(update={"json_schema": schema.model_json_schema()})
        rejected: list[Outcome] = []
        for attempt in range(attempts):
            if attempt:
                seed = (request.seed or 0) + attempt * 1_000_003
                request = request.model_copy(update={"seed": seed})
            outcome = await self._complete(request)
            if outcome.completion is None:
                break
            try:
                outcome.parsed = schema.model_validate(parse_json(outcome.completion.text))
                break
            except (ValueError, ValidationError) as e:
                if attempt + 1 < attempts:
                    self.stats.retries["invalid_output"] += 1
                    rejected.append(outcome)
                    continue
                outcome.error = LLMError(
                    "invalid_output", str(e).splitlines()[0], raw=outcome.completion.text
                )
        # The outcome carries every call it took: the summary and usage_of count them all.
        outcome.rejected = rejected
        outcome.attempts += sum(r.attempts for r in rejected)
        self.stats.add(outcome)
        return outcome

    async def map(
        self, requests: Iterable[ChatRequest], schema: type[BaseModel] | None = None
    ) -> AsyncIterator[Outcome]:
        """Complete every request, ``concurrency`` at a time, yielding outcomes in input order.

        With ``schema``, each is a structured call (see :meth:`complete_json`) and the
        outcome's ``parsed`` holds the validated object.
        """
        window: deque[asyncio.Task[Outcome]] = deque()
        turn = time.perf_counter()  # when the event loop last had a turn

        async def next_outcome() -> Outcome:
            nonlocal turn
            task = window.popleft()
            if not task.done():
                outcome = await task
                turn = time.perf_counter()
                return outcome
            if time.perf_counter() - turn > _LOOP_TURN:
                # Outcomes are ready faster than the caller takes them. Let the loop run now
                # and then, so that answers which arrived meanwhile are read and the slots
                # they free are refilled, instead of all waiting until the caller is through
                # the whole batch: with a fixed server latency, that wait is added to it.
                await asyncio.sleep(0)
                turn = time.perf_counter()
            return task.result()

        try:
            for request in requests:
                call = (
                    self.complete(request)
                    if schema is None
                    else self.complete_json(request, schema)
                )
                window.append(asyncio.create_task(call))
                if len(window) >= 4 * self.concurrency:
                    yield await next_outcome()
            while window:
                yield await next_outcome()
        finally:
            for task in window:
                task.cancel()

    def _estimate(self, request: ChatRequest) -> int:
        chars = sum(len(m.content or "") for m in request.messages)
        return chars // 4 + request.max_tokens

    def _cost(self, completion: Completion) -> float | None:
        return self.prices.cost(
            completion.model, completion.prompt_tokens, completion.completion_tokens
        )

    async def aclose(self) -> None:
        if self.cache is not None:
            self.cache.flush()
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
