"""Limits for one backend: calls in flight (slots), requests and tokens per minute (buckets)."""

from __future__ import annotations

import asyncio
import time
from collections import deque


class Slots:
    """At most ``size`` holders at once; the others wait in FIFO order.

    asyncio.Semaphore would do, but its release scans the waiters from the front past those
    already woken, and so does every acquire while any wait: with hundreds waiting (the
    engine keeps four times its concurrency started) a burst of releases costs quadratic
    time, tens of µs per call at 256. Here a release hands the slot to the next waiter in
    O(1).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"at least one slot is needed, got {size}")
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self.free > 0:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled
                self._release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter is done: skip it
                waiter.set_result(None)  # the slot passes to it directly
                return
        self.free += 1


class Bucket:
    """Holds up to ``per_minute`` units and refills continuously at that rate.

    The balance may go negative when a call used more than was reserved for it; later
    callers then wait until it is paid back.
    """

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError(f"a limit must be positive, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)  # a single huge call must still be able to run
        async with self._lock:
            self._refill()
            while self.level < amount:
                await asyncio.sleep((amount - self.level) / self.rate)
                self._refill()
            self.level -= amount

    def adjust(self, amount: float) -> None:
        """Charge (positive) or refund (negative) the difference once the real cost is known."""
        self._refill()
        self.level = min(self.capacity, self.level - amount)


class RateLimits:
    def __init__(
        self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None
    ) -> None:
        self.requests = Bucket(requests_per_minute) if requests_per_minute else None
        self.tokens = Bucket(tokens_per_minute) if tokens_per_minute else None

    async def acquire(self, estimated_tokens: int) -> None:
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None:
            await self.tokens.take(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        if self.tokens is not None:
            self.tokens.adjust(actual_tokens - estimated_tokens)
