"""SIGKILL a generation run at several moments; the rerun must finish the same dataset.

The driver (llm_resume_driver.py) answers PROMPTS prompts through the engine, with a
request cache, against a stub server running in another process, and writes one record
per outcome into a new dataset version. The test kills it with SIGKILL at several points,
restarts it each time, and lets the last run commit. The committed dataset must equal the
one of an uninterrupted reference run, and the server must not have been paid twice for
more than the calls each kill could lose.

The bound, from cache.py and engine.py: an answer reaches disk when the batch it is in is
committed by the cache's writer thread. A batch is handed over when CACHE_BATCH answers
are pending, after the previous batch is committed, so at any moment at most one batch is
being written and at most CACHE_BATCH answers wait in the next. Between a call's start and
its commit, the call is either in flight (one of CONCURRENCY slots) or one of those
uncommitted answers. So a kill loses at most CONCURRENCY + 2 * CACHE_BATCH paid calls, and
every other call is made exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datamill.llm.cache import RequestCache
from datamill.store import Dataset

PROMPTS, CONCURRENCY, CACHE_BATCH, LATENCY = 300, 16, 8, 0.02
KILL_AFTER = (0, 50, 150, 290)  # outcomes the run has reported when it is killed
LOST_PER_KILL = CONCURRENCY + 2 * CACHE_BATCH
DRIVER = Path(__file__).with_name("llm_resume_driver.py")
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The stub server, in its own process: it outlives every driver the test kills."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datamill.llm.stub_server",
            "--port",
            "0",
            "--latency",
            str(LATENCY),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def server_calls(server: str) -> Counter[str]:
    with urllib.request.urlopen(f"{server}/stats", timeout=30) as response:
        return Counter(json.load(response)["calls"])


def start(server: str, work: Path, name: str) -> subprocess.Popen[str]:
    args = [work / f"{name}.cache.sqlite", work / name, PROMPTS, CONCURRENCY, CACHE_BATCH]
    return subprocess.Popen(
        [sys.executable, str(DRIVER), f"{server}/v1", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(work / f"{name}.stderr").open("a"),
        text=True,
    )


def finish(proc: subprocess.Popen[str], work: Path, name: str) -> None:
    """Let the run commit and end."""
    out, _ = proc.communicate("commit\n", timeout=TIMEOUT)
    stderr = (work / f"{name}.stderr").read_text()
    assert proc.returncode == 0, stderr
    assert out.split()[-1] == str(PROMPTS)


def kill_after(proc: subprocess.Popen[str], outcomes: int, server: str, calls_before: int) -> None:
    """SIGKILL the run once it has reported ``outcomes``, and with calls in flight for 0."""
    assert proc.stdout is not None
    while int(proc.stdout.readline() or "-1") < outcomes:
        assert proc.poll() is None, "the driver ended before it could be killed"
    deadline = time.monotonic() + TIMEOUT
    while outcomes == 0 and server_calls(server).total() == calls_before:
        assert time.monotonic() < deadline, "the driver never called the server"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(TIMEOUT) == -signal.SIGKILL
    proc.stdout.close()
    assert proc.stdin is not None
    proc.stdin.close()


def cached(path: Path) -> int:
    cache = RequestCache(path)
    try:
        return len(cache)
    finally:
        cache.close()


def contents(path: Path) -> list[dict[str, Any]]:
    return [
        r.model_dump(mode="json", exclude={"provenance": {"created_at"}})
        for r in Dataset.open(path).records()
    ]


def test_killed_runs_resume_into_exactly_the_reference_dataset(server: str, tmp_path: Path) -> None:
    finish(start(server, tmp_path, "reference"), tmp_path, "reference")
    reference = contents(tmp_path / "reference")
    before = server_calls(server)
    assert before.total() == PROMPTS

    cache = tmp_path / "run.cache.sqlite"
    for outcomes in KILL_AFTER:
        kill_after(start(server, tmp_path, "run"), outcomes, server, server_calls(server).total())
        assert Dataset.open(tmp_path / "run").versions == []  # a killed run commits nothing
        # Every outcome the run reported is on disk, but for the uncommitted batches: the
        # last kill leaves the final run little more than the prompts it had not reached.
        assert cached(cache) >= outcomes - 2 * CACHE_BATCH
    finish(start(server, tmp_path, "run"), tmp_path, "run")
    calls = server_calls(server) - before

    resumed = contents(tmp_path / "run")
    assert len(resumed) == PROMPTS
    assert len({r["id"] for r in resumed}) == PROMPTS
    assert resumed == reference
    assert len(Dataset.open(tmp_path / "run").versions) == 1

    assert set(calls) == set(before)  # every prompt was asked, and nothing else
    assert calls.total() <= PROMPTS + len(KILL_AFTER) * LOST_PER_KILL, calls
    assert cached(cache) == PROMPTS
