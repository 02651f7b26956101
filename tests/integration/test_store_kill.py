"""SIGKILL a process writing a dataset at many moments; committed versions must survive.

A child process commits version 1, then writes a large version 2 and reports each point
it reaches on stdout. The test kills it with SIGKILL either at a point where the child
waits to be killed (deterministic: inside commit, between writing and renaming the
manifest, ...) or as soon as it reports a point while it keeps running (wherever the
kill lands). Afterwards the dataset must open, version 1 must read back exactly, version
2 must be either absent or complete, and a new version must commit.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from datamill.records import Record
from datamill.store import Dataset

V1_SIZE, V2_SIZE, ROWS_PER_SHARD = 500, 8_000, 2_000


def make_records(tag: str, n: int) -> list[Record]:
    return [
        Record(
            messages=[
                {"role": "system", "content": f"{tag}\x00\n\u202e ✓ 🚀"},
                {"role": "user", "content": f"{tag} question {i}"},
                {"role": "assistant", "content": f"{tag} answer {i}" * (i % 7)},
            ],
            metadata={"tag": tag, "i": i, "nested": [{"x": i / 3}, None, True]},
            provenance={"source": "synthetic", "seed": i, "created_at": datetime(2024, 1, 1)},
        )
        for i in range(n)
    ]


CHILD = f"""
import os
import sys
from datetime import datetime
from pathlib import Path

from datamill import store
from datamill.records import Record
from datamill.store import Dataset

{inspect.getsource(make_records)}

path, stop_at = sys.argv[1], sys.argv[2]
in_version_2 = False


def at(point):
    # Report a point; if it is the one the test asked for, wait there to be killed.
    print(point, flush=True)
    if point == stop_at:
        sys.stdin.read()
        os._exit(3)


real_replace, real_commit = os.replace, Dataset._commit


def replace(src, dst):
    if in_version_2 and Path(dst).name == store.MANIFEST:
        at("before manifest replace")
        real_replace(src, dst)
        at("after manifest replace")
    else:
        real_replace(src, dst)


def commit(self, version):
    if in_version_2:
        at("shards final")
    return real_commit(self, version)


os.replace = replace
Dataset._commit = commit

ds = Dataset.create(path)
ds.write(make_records("v1", {V1_SIZE}), stage="v1")
at("v1 committed")
in_version_2 = True
with ds.writer("v2", rows_per_shard={ROWS_PER_SHARD}) as w:
    for i, record in enumerate(make_records("v2", {V2_SIZE}), 1):
        w.write(record)
        if i % 1000 == 0:
            at(f"progress {{i}}")
    at("committing")
at("committed")
at("done")
sys.stdin.read()  # never exit on its own: every run ends with the test's SIGKILL
"""


@functools.cache
def expected(tag: str) -> list[Record]:
    return make_records(tag, V1_SIZE if tag == "v1" else V2_SIZE)


def run_and_kill(path: Path, kill_on: str, stop_at: str) -> None:
    """Run the child and SIGKILL it once it reports ``kill_on``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), stop_at],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reached = False
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            reached = line.strip() == kill_on
            if reached or line.strip() == "done":
                break
        if reached:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    assert reached, f"the child never reported {kill_on!r}:\n{err}"
    assert proc.returncode == -signal.SIGKILL


# (reported point to kill on, point to wait at, is version 2 visible afterwards)
# None: the child keeps running after the report, so the kill may land on either side.
SCENARIOS = {
    "after version 1": ("v1 committed", "v1 committed", False),
    "early while writing": ("progress 1000", "", None),
    "waiting mid-write": ("progress 4000", "progress 4000", False),
    "late while writing": ("progress 7000", "", None),
    "before commit": ("committing", "committing", False),
    "racing the commit": ("committing", "", None),
    "shards final, manifest untouched": ("shards final", "shards final", False),
    "manifest written, not renamed": ("before manifest replace", "before manifest replace", False),
    "manifest renamed, lock held": ("after manifest replace", "after manifest replace", True),
    "after commit": ("committed", "committed", True),
}


@pytest.mark.parametrize(("kill_on", "stop_at", "v2_visible"), SCENARIOS.values(), ids=SCENARIOS)
def test_sigkill_leaves_every_committed_version_intact(
    tmp_path: Path, kill_on: str, stop_at: str, v2_visible: bool | None
) -> None:
    path = tmp_path / "ds"
    run_and_kill(path, kill_on, stop_at)

    ds = Dataset.open(path)
    numbers = [v.version for v in ds.versions]
    if v2_visible is None:
        assert numbers in ([1], [1, 2])
    else:
        assert numbers == ([1, 2] if v2_visible else [1])

    assert list(ds.records(1)) == expected("v1")
    assert ds.version(1).counts == {"records": V1_SIZE}
    if 2 in numbers:
        assert ds.version(2).counts == {"records": V2_SIZE}
        assert ds.count(2) == V2_SIZE
        assert list(ds.records(2)) == expected("v2")
    if stop_at == "progress 4000":  # the kill really did leave finished shards behind
        referenced = {Path(s).name for s in ds.version(1).shards}
        assert {p.name for p in (path / "shards").glob("*.parquet")} - referenced

    after = make_records("after", 10)
    version = ds.write(after, stage="after kill")  # the lock is free and commits work
    assert version.version == numbers[-1] + 1
    assert version.parent == numbers[-1]
    assert list(Dataset.open(path).records()) == after
    assert list(ds.records(1)) == expected("v1")
