"""What a check is, and how checks run over a stream of records.

A check adds its :class:`CheckResult`, under its name, to every record of a stream. Most
look at one record at a time (:class:`RecordCheck`); some need a batch at once, to keep
model calls in flight together or to vectorise (:class:`BatchCheck`). Checks are async
generators so that LLM-backed and CPU-bound checks compose in one streaming chain.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import ClassVar, Literal, Protocol

from datamill.records import CheckResult, Record

Part = Literal["prompt", "response", "conversation"]


def text_of(record: Record, part: Part) -> str:
    """The text a check looks at: the prompt turns, the final response, or everything."""
    if part == "response":
        return record.response or ""
    messages = record.prompt if part == "prompt" else record.messages
    if len(messages) == 1:  # most imported texts: no join to build
        (message,) = messages
        return "" if message.role == "system" else message.content or ""
    return "\n".join(m.content or "" for m in messages if m.role != "system")


class Check(Protocol):
    name: str

    def run(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]: ...


class RecordCheck(ABC):
    """A check that answers one question about one record."""

    name: ClassVar[str]

    @abstractmethod
    def check(self, record: Record) -> CheckResult: ...

    async def run(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        async for record in records:
            yield record.with_check(self.name, self.check(record))


class BatchCheck(ABC):
    """A check that looks at ``batch_size`` records at once."""

    name: ClassVar[str]
    batch_size: int = 256

    @abstractmethod
    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]: ...

    async def run(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        batch: list[Record] = []
        async for record in records:
            batch.append(record)
            if len(batch) >= self.batch_size:
                for done in await self._checked(batch):
                    yield done
                batch = []
        for done in await self._checked(batch):
            yield done

    async def _checked(self, batch: list[Record]) -> list[Record]:
        if not batch:
            return []
        results = await self.check_batch(batch)
        return [r.with_check(self.name, res) for r, res in zip(batch, results, strict=True)]


async def _aiter(records: Iterable[Record]) -> AsyncIterator[Record]:
    for record in records:
        yield record


def chain(records: Iterable[Record], checks: Iterable[Check]) -> AsyncIterator[Record]:
    """The records with every check applied, in order, as one async stream."""
    stream = _aiter(records)
    for check in checks:
        stream = check.run(stream)
    return stream


async def close_checks(checks: Iterable[Check]) -> None:
    """Let checks that hold resources (model engines, pools) release them."""
    for check in checks:
        close = getattr(check, "aclose", None)
        if close is not None:
            await close()


def run_checks(records: Iterable[Record], checks: Sequence[Check]) -> Iterator[Record]:
    """The same chain for synchronous callers: streams, one record at a time."""
    loop = asyncio.new_event_loop()
    stream = chain(records, checks)
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(stream))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(stream.aclose())
        loop.run_until_complete(close_checks(checks))
        loop.close()


def passed(record: Record, names: Iterable[str] | None = None) -> bool:
    """True unless one of the named checks (all, by default) failed."""
    wanted = record.checks if names is None else {n: record.checks[n] for n in names}
    return all(result.passed is not False for result in wanted.values())
