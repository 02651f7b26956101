"""The engine every LLM call goes through: cache, concurrency, rate limits, retries, accounting.

``Engine.map`` takes requests and yields one :class:`Outcome` per request, in input order,
keeping up to ``concurrency`` calls in flight. A failed call is an outcome with an error,
not an exception: the run goes on and the summary counts it by cause.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from datamill.errors import LLMError
from datamill.llm.base import Backend, ChatRequest, Completion
from datamill.llm.cache import RequestCache, cache_key
from datamill.llm.gc_tuning import relaxed_gc
from datamill.llm.limits import RateLimits, Slots
from datamill.llm.outcome import Outcome, RunStats, parse_json, samples, usage_of
from datamill.llm.prices import PriceTable
from datamill.llm.retry import RetryPolicy

# Outcomes and their accounting live in llm/outcome.py; callers import them from here too.
__all__ = ["Engine", "Outcome", "RunStats", "parse_json", "samples", "usage_of"]

T = TypeVar("T", bound=BaseModel)

_LOOP_TURN = 0.002  # seconds of caller's work on ready outcomes before the loop gets a turn


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
        outcome's ``parsed`` holds the validated object. The garbage collector's young
        generation is larger until the last outcome is taken (see ``gc_tuning``).
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

        with relaxed_gc():
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
                    elif len(window) % self.concurrency == 0:
                        # Filling the window: let the calls made so far start now rather
                        # than after the whole window is made.
                        await asyncio.sleep(0)
                while window:
                    yield await next_outcome()
                if self.cache is not None:
                    # Commit the last answers while the caller finishes its own work.
                    self.cache.start_flush()
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
