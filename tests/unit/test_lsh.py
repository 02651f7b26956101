"""What near-duplicate detection remembers: the band index, sketch positions and spilled
ids, the same whether they sit in memory or in files, and the process's own memory flat
however much they hold."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamill.checks.lsh import BandIndex, SketchStore, Spill

ALL_IN_MEMORY = 1 << 40  # a budget no test reaches
FILTER_BYTES = 1 << 23
PROC = Path("/proc/self/status")


def open_in(folder: Path) -> int:
    """How many of this process's descriptors are open on files in ``folder``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder))
        except OSError:  # the descriptor listing the folder, closed by now
            continue
    return count


@pytest.mark.parametrize("memory_pairs", [ALL_IN_MEMORY, 150, 1])
def test_the_band_index_finds_every_text_in_a_bucket_as_it_grows(memory_pairs: int) -> None:
    index, rng = BandIndex(memory_pairs), np.random.default_rng(0)
    shared = np.uint64(12345)
    for batch in range(20):
        keys = rng.integers(1, 2**64, 100, dtype=np.uint64)
        keys[0] = shared
        index.add(keys, np.arange(batch * 100, batch * 100 + 100))
    positions, found = index.lookup(np.array([shared, np.uint64(7 << 40)], dtype=np.uint64))
    assert positions.tolist() == [0] * 20
    assert sorted(found.tolist()) == list(range(0, 2000, 100))


KEYS = st.sampled_from(
    # a few keys, so that buckets fill; two agree on the top bits that the index compares
    [1, 2**60, 2**63 + 5, 0xABCDEF0123456789, 0xABCDEF0123456789 ^ 0xFFF, 2**64 - 1]
) | st.integers(0, 2**64 - 1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(KEYS, max_size=40), max_size=12),
    st.lists(KEYS, max_size=20),
    st.booleans(),
    st.sampled_from([ALL_IN_MEMORY, 30, 1]),
)
def test_the_band_index_answers_as_a_dict_would(
    batches: list[list[int]], asked: list[int], presorted: bool, memory_pairs: int
) -> None:
    index, truth, number = BandIndex(memory_pairs), {}, 0
    shift = 64 - BandIndex.KEY_BITS
    for batch in batches:
        ids = np.arange(number, number + len(batch))
        keys = np.array(batch, np.uint64)
        index.add(keys, ids, np.argsort(keys, kind="stable") if presorted else None)
        for key, i in zip(batch, ids.tolist(), strict=True):
            truth.setdefault(key >> shift, []).append(i)
        number += len(batch)
    needles = np.array(asked, np.uint64)
    order = np.argsort(needles, kind="stable") if presorted else None
    positions, found = index.lookup(needles, order)
    top = (needles >> np.uint64(32)).astype(np.uint32)  # as workers send keys
    assert np.array_equal(index.lookup(top, order)[1], found)
    assert positions.dtype == np.int64 and found.dtype == np.uint32
    got = sorted(zip(positions.tolist(), found.tolist(), strict=True))
    want = sorted((p, i) for p, key in enumerate(asked) for i in truth.get(key >> shift, []))
    assert got == want


def test_an_index_mostly_in_files_answers_as_one_in_memory(tmp_path: Path) -> None:
    """Many batches of many sizes, with keys from a small pool so that buckets hold
    hundreds of texts across runs: every lookup is the same, pair for pair."""
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 2**64, 20000, dtype=np.uint64)
    in_memory, in_files = BandIndex(ALL_IN_MEMORY), BandIndex(256, folder=str(tmp_path))
    number = 0
    for step in range(200):
        texts = int(rng.choice([0, 1, 7, 64, 300, 1000])) if step % 50 else 3000
        keys = rng.choice(pool, (texts, 16)) ^ rng.integers(0, 2, (texts, 16), np.uint64) << 40
        asked = keys.ravel()
        order = np.argsort(asked, kind="stable")
        a, b = in_memory.lookup(asked, order), in_files.lookup(asked, order)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        ids = np.repeat(np.arange(number, number + texts, dtype=np.uint32), 16)
        for index in (in_memory, in_files):
            index.add(keys, ids, order if step % 2 else None)
        number += texts
        assert in_files.nbytes <= FILTER_BYTES + 2 * 256 * 8
    assert in_files.disk_bytes > 0.99 * number * 16 * 8 and in_memory.disk_bytes == 0
    assert in_memory.nbytes == FILTER_BYTES + number * 16 * 8
    asked = rng.choice(pool, 5000)
    a, b = in_memory.lookup(asked), in_files.lookup(asked)
    assert len(a[1]) > 50_000
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_an_index_lets_its_files_go(tmp_path: Path) -> None:
    """Files of runs merged away are closed at once, the others when the index goes."""
    index, rng = BandIndex(100, folder=str(tmp_path)), np.random.default_rng(1)
    for batch in range(300):
        keys = rng.integers(0, 2**64, 64, dtype=np.uint64)
        index.add(keys, np.arange(batch * 64, batch * 64 + 64))
        assert (batch > 0) <= open_in(tmp_path) <= 9  # a run per bit of 300, at most
    assert not list(tmp_path.iterdir())  # unlinked from the start
    index.lookup(keys)
    del index
    gc.collect()
    assert open_in(tmp_path) == 0
    index = BandIndex(100, folder=str(tmp_path))
    index.add(keys, np.arange(64))
    index.add(keys, np.arange(64, 128))
    assert open_in(tmp_path) == 1
    index.close()
    assert open_in(tmp_path) == 0


def anon_growth(setup: str, step: str, steps: int) -> int:
    """How much a fresh Python process's anonymous memory (its heap, not file pages)
    grows from after ``step`` ran once (with ``i`` = 0, which touches what every step
    needs) to after it ran ``steps`` times in all."""
    script = f"""
import numpy as np
from datamill.checks.lsh import BandIndex, SketchStore, Spill

def anon():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("RssAnon:"))

{setup}

def step(i):
{textwrap.indent(step, "    ")}

step(0)
base = anon()
for i in range(1, {steps}):
    step(i)
print(anon() - base)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    return int(out.stdout)


INDEX_SETUP = """
rng = np.random.default_rng(0)
keys = rng.integers(0, 2**32, (4096, 16), dtype=np.uint32)
index = BandIndex({budget})
"""
INDEX_STEP = """
batch = keys ^ np.uint32(i * 2654435761 % 2**32)
order = np.argsort(batch.ravel(), kind="stable")
index.lookup(batch.ravel(), order)
index.add(batch, np.repeat(np.arange(4096 * i, 4096 * (i + 1), dtype=np.uint32), 16), order)
"""


@pytest.mark.skipif(not PROC.exists(), reason="needs /proc")
def test_the_index_holds_no_more_memory_as_it_grows() -> None:
    steps = 64  # 4 million pairs, 32 MB of them
    size = (steps - 1) * 4096 * 16 * 8
    in_memory = anon_growth(INDEX_SETUP.format(budget=ALL_IN_MEMORY), INDEX_STEP, steps)
    assert in_memory > 0.9 * size  # what the measure sees when the pairs are in memory
    bounded = anon_growth(INDEX_SETUP.format(budget=1 << 16), INDEX_STEP, steps)
    assert bounded < size / 4


@pytest.mark.skipif(not PROC.exists(), reason="needs /proc")
def test_sketch_positions_and_ids_hold_no_more_memory_as_they_grow() -> None:
    setup = """
store, spill = SketchStore(), Spill()
hashes = np.arange(40960, dtype=np.uint32)
offsets = np.arange(0, 40961, 10)
ids = b"".join(f"doc-{i:08d}".encode() for i in range(4096))
ends = np.arange(12, 12 * 4096 + 1, 12)
"""
    step = """
store.add(hashes, offsets)
spill.add(ids, ends)
"""
    steps = 600  # 2.4 million texts: 14 + 8 bytes each, 54 MB in arrays
    grown = anon_growth(setup, step, steps)
    assert grown < (steps - 1) * 4096 * 22 / 8


@pytest.mark.parametrize("block", [1, 7, 1 << 16])
def test_spilled_strings_come_back_as_they_went(block: int, tmp_path: Path) -> None:
    spill, words = Spill(block, folder=str(tmp_path)), ["", "r1", "é\u00e9 \u202e<script>"]
    words += ["x" * 5000, "\udcff lone", "日本語のID"]
    want: list[bytes] = []
    for round_ in range(300):
        encoded = [f"{w}{round_}".encode(errors="surrogatepass") for w in words[: round_ % 7]]
        spill.add(b"".join(encoded), np.cumsum([len(e) for e in encoded], dtype=np.int64))
        want += encoded
    assert spill.count == len(want) == 897
    assert [spill.get(n) for n in range(spill.count)] == want
    assert spill.get(896).decode(errors="surrogatepass") == "\udcff lone299"
    assert spill.get(894).decode() == "é\u00e9 \u202e<script>299"
    assert spill.nbytes == 8 * block
    with pytest.raises(IndexError):
        spill.get(897)
    assert open_in(tmp_path) == 2
    spill.close()
    assert open_in(tmp_path) == 0


@pytest.mark.parametrize("block", [1, 5, 1 << 16])
def test_sketches_come_back_as_they_went(block: int, tmp_path: Path) -> None:
    (tmp_path / "own").mkdir()
    store, rng = SketchStore(block, folder=str(tmp_path / "own")), np.random.default_rng(2)
    worker = tmp_path / "worker"
    want: list[list[int]] = []
    with worker.open("wb") as file:
        for chunk in range(200):
            sizes = rng.integers(0, 9, int(rng.integers(1, 12)))
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            hashes = rng.integers(0, 2**32, offsets[-1], dtype=np.uint32)
            rows = np.flatnonzero(rng.random(len(sizes)) < 0.7) if chunk % 3 else None
            if chunk % 2:  # as a worker writes them
                spilled = (str(worker), file.tell())
                file.write(hashes.tobytes())
                file.flush()
                store.add(np.zeros(0, np.uint32), offsets, rows, spilled)
                assert store.fetch(spilled, 1, 3).tolist() == hashes[1:3].tolist()[:2]
            else:
                store.add(hashes, offsets, rows)
            for row in range(len(sizes)) if rows is None else rows.tolist():
                want.append(hashes[offsets[row] : offsets[row + 1]].tolist())
    assert store.count == len(want)
    assert [store.get(n).tolist() for n in range(store.count)] == want
    assert store.nbytes == 14 * block
    assert open_in(tmp_path) == 3  # the store's two files and the worker's
    store.close()
    assert open_in(tmp_path) == 0
