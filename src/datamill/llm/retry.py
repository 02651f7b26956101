"""When to try a failed call again, and how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass

from datamill.errors import LLMError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, never shorter than the server's Retry-After."""

    max_attempts: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 60.0

    def delay(self, attempt: int, error: LLMError, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        wait = (rng or random).uniform(0, ceiling)
        if error.retry_after is not None:
            wait = max(wait, min(error.retry_after, self.max_seconds))
        return wait

    def should_retry(self, attempt: int, error: LLMError) -> bool:
        return error.retryable and attempt < self.max_attempts
