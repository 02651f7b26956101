"""Fewer garbage collections while many calls are in flight.

At hundreds of calls in flight, every call's coroutines, futures and buffers live for the
server's whole latency, long enough to outlive CPython's young generation (700
allocations) and be promoted, so the collector keeps walking them and, every few hundred
calls, the whole heap: a quarter of the CPU of a run at 256 in flight, in pauses that
every call waits out. A larger young generation lets them die young instead.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG = 10_000  # allocations between collections of the young generation (CPython: 700)

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()


@contextmanager
def relaxed_gc(young: int = YOUNG) -> Iterator[None]:
    """Collect the young generation every ``young`` allocations inside the block, and
    restore the thresholds when the last of the nested or concurrent blocks ends.

    Thresholds are the process's: a threshold set by someone else inside the block is
    undone at its end. A disabled collector (or threshold 0) is left alone.
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            if 0 < _saved[0] < young:
                gc.set_threshold(young, *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
