"""The request cache's writer thread: one for all batches, gone once idle, back when needed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from datamill.llm import cache as cache_module
from datamill.llm.base import Completion
from datamill.llm.cache import RequestCache


def completion(text: str) -> Completion:
    return Completion(text=text, model="m", backend="openai")


def test_one_thread_writes_every_batch(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "c.sqlite", batch=2, max_delay=3600)
    seen: set[threading.Thread] = set()
    for i in range(10):
        cache.put(f"k{i}", completion(str(i)))  # every second put hands a batch over
        if i % 2:
            assert cache._writer is not None
            seen.add(cache._writer)
    cache.flush()
    assert len(seen) == 1
    cache.close()
    assert not seen.pop().is_alive()
    again = RequestCache(tmp_path / "c.sqlite")
    assert len(again) == 10 and again.get("k7") == completion("7")
    again.close()


def test_the_writer_ends_when_idle_and_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "_IDLE", 0.05)
    cache = RequestCache(tmp_path / "c.sqlite", batch=1, max_delay=3600)
    cache.put("a", completion("A"))
    cache.flush()
    first = cache._writer
    assert first is not None
    deadline = time.monotonic() + 10
    while first.is_alive():
        assert time.monotonic() < deadline, "the idle writer did not end"
        time.sleep(0.01)
    assert cache._writer is None
    cache.put("b", completion("B"))  # a new writer starts for this batch
    assert cache._writer is not None and cache._writer is not first
    cache.flush()
    assert len(cache) == 2
    cache.close()
    again = RequestCache(tmp_path / "c.sqlite")
    assert again.get("a") == completion("A") and again.get("b") == completion("B")
    again.close()
