"""The dataset store: versions, lineage, atomic commits, sharding, streaming, concurrency."""

from __future__ import annotations

import multiprocessing
import tempfile
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamill.errors import DatasetError
from datamill.records import Record
from datamill.store import MANIFEST, Dataset
from strategies import records

CREATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_records(tag: str, n: int, start: int = 0) -> list[Record]:
    return [
        Record(
            messages=[
                {"role": "user", "content": f"{tag} question {i}"},
                {"role": "assistant", "content": f"{tag} answer {i} ✓"},
            ],
            metadata={"tag": tag, "i": i},
            provenance={"source": "synthetic", "seed": i, "created_at": CREATED},
        )
        for i in range(start, start + n)
    ]


def shard_files(ds: Dataset) -> set[str]:
    """Everything in the shards directory, finished or not."""
    return {p.name for p in (ds.path / "shards").iterdir()}


@pytest.fixture
def ds(tmp_path: Path) -> Dataset:
    return Dataset.create(tmp_path / "ds")


# -- create and open ------------------------------------------------------------------


def test_shards_written_before_decisions_existed_still_read(ds: Dataset) -> None:
    with ds.writer("import", {}, parent=None) as w:
        for record in make_records("old", 3):
            w.write(record)
    (shard,) = (ds.path / "shards").glob("*.parquet")
    table = pq.read_table(shard)
    pq.write_table(table.drop_columns(["decisions"]), shard)
    assert [r.decisions for r in ds.records()] == [{}, {}, {}]


def test_create_makes_an_empty_dataset(tmp_path: Path) -> None:
    ds = Dataset.create(tmp_path / "corpus")
    assert (ds.path / MANIFEST).is_file()
    assert ds.manifest().name == "corpus"
    assert ds.versions == []
    with pytest.raises(DatasetError, match="no versions yet"):
        ds.version()
    assert Dataset.create(tmp_path / "other", name="nice name").manifest().name == "nice name"


def test_create_on_an_existing_dataset_opens_it(ds: Dataset) -> None:
    ds.write(make_records("a", 3), stage="ingest")
    again = Dataset.create(ds.path, name="ignored")
    assert [v.version for v in again.versions] == [1]
    assert list(Dataset.open(ds.path).records()) == make_records("a", 3)


@pytest.mark.parametrize("kind", ["missing", "empty dir", "file"])
def test_opening_a_non_dataset_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "thing"
    if kind == "empty dir":
        path.mkdir()
    elif kind == "file":
        path.write_text("not a dataset")
    with pytest.raises(DatasetError, match="not a datamill dataset") as exc:
        Dataset.open(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe garbage", b"[]", b'{"name": 3}', b'{"name": "x", "versions": [{}]}'],
)
def test_corrupt_manifest_is_an_error_naming_the_file(ds: Dataset, content: bytes) -> None:
    (ds.path / MANIFEST).write_bytes(content)
    with pytest.raises(DatasetError, match="unreadable manifest") as exc:
        Dataset.open(ds.path)
    assert str(ds.path / MANIFEST) in str(exc.value)


def test_manifest_from_a_newer_datamill_is_refused(ds: Dataset) -> None:
    (ds.path / MANIFEST).write_text('{"schema_version": 99, "name": "x"}')
    with pytest.raises(DatasetError, match="upgrade datamill"):
        Dataset.open(ds.path)


# -- versions and lineage -------------------------------------------------------------


def test_versions_record_their_lineage(ds: Dataset) -> None:
    v1 = ds.write(make_records("a", 5), stage="ingest", params={"file": "in.jsonl"})
    v2 = ds.write(make_records("b", 3), stage="filter", params={"min": 1, "rules": ["x"]})
    v3 = ds.write(make_records("c", 2), stage="dedupe", parent=1)

    assert [v.version for v in ds.versions] == [1, 2, 3]
    assert ds.versions == [v1, v2, v3]
    assert (v1.parent, v2.parent, v3.parent) == (None, 1, 1)
    assert (v1.stage, v2.stage, v3.stage) == ("ingest", "filter", "dedupe")
    assert v1.params == {"file": "in.jsonl"}
    assert v2.params == {"min": 1, "rules": ["x"]}
    assert v3.params == {}
    assert [v.counts for v in ds.versions] == [{"records": 5}, {"records": 3}, {"records": 2}]
    assert all(v.created_at.utcoffset() == timedelta(0) for v in ds.versions)

    assert ds.version() == v3
    assert ds.version(2) == v2
    assert list(ds.records(1)) == make_records("a", 5)
    assert list(ds.records(2)) == make_records("b", 3)
    assert list(ds.records()) == make_records("c", 2)
    assert [ds.count(n) for n in (1, 2, 3)] == [5, 3, 2]


def test_extend_appends_to_the_parents_records(ds: Dataset) -> None:
    ds.write(make_records("a", 4), stage="ingest")
    ds.write(make_records("b", 2), stage="other")
    v3 = ds.write(make_records("c", 3), stage="more", parent=1, extend=True)

    assert v3.parent == 1
    assert v3.counts == {"records": 7}
    assert ds.count(3) == 7
    assert list(ds.records(3)) == make_records("a", 4) + make_records("c", 3)
    assert v3.shards[: len(ds.version(1).shards)] == ds.version(1).shards  # reused, not copied
    assert list(ds.records(1)) == make_records("a", 4)

    v4 = ds.write(make_records("d", 1), stage="more", extend=True)  # parent: the latest
    assert v4.parent == 3
    assert list(ds.records(4)) == make_records("a", 4) + make_records("c", 3) + make_records("d", 1)


def test_a_missing_version_is_an_error_listing_the_versions(ds: Dataset) -> None:
    ds.write(make_records("a", 1), stage="s")
    ds.write(make_records("b", 1), stage="s")
    for call in (
        lambda: ds.version(7),
        lambda: list(ds.records(7)),
        lambda: ds.count(7),
        lambda: ds.writer("s", parent=7),
        lambda: ds.writer("s", parent=7, extend=True),
    ):
        with pytest.raises(DatasetError, match=r"no version 7 \(versions: 1, 2\)"):
            call()
    assert [v.version for v in ds.versions] == [1, 2]


def test_an_empty_version_is_allowed(ds: Dataset) -> None:
    v = ds.write([], stage="nothing")
    assert v.counts == {"records": 0}
    assert v.shards == []
    assert list(ds.records()) == []
    assert ds.count() == 0


# -- commit and abort -----------------------------------------------------------------


def test_an_exception_in_the_writer_leaves_nothing_behind(ds: Dataset) -> None:
    ds.write(make_records("a", 10), stage="ingest")
    before_manifest, before_files = ds.manifest(), shard_files(ds)

    with (
        pytest.raises(RuntimeError, match="stage crashed"),
        ds.writer("broken", rows_per_shard=100) as w,
    ):
        w.write_all(make_records("b", 5000))  # several finished shards plus an open one
        assert len(shard_files(ds)) > len(before_files) + 1
        raise RuntimeError("stage crashed")

    assert ds.manifest() == before_manifest
    assert shard_files(ds) == before_files


def test_a_failing_record_source_leaves_nothing_behind(ds: Dataset) -> None:
    def source() -> Iterator[Record]:
        yield from make_records("a", 3000)
        raise ValueError("bad input line")

    with pytest.raises(ValueError, match="bad input line"):
        ds.write(source(), stage="ingest")
    assert ds.versions == []
    assert shard_files(ds) == set()


def test_a_failure_while_committing_leaves_nothing_behind(ds: Dataset) -> None:
    # A lone surrogate passes validation but cannot be encoded: the last flush, inside
    # commit(), fails after earlier shards were already finished.
    unwritable = make_records("x", 1)[0].model_copy(update={"metadata": {"bad": "\ud800"}})
    with pytest.raises(UnicodeEncodeError), ds.writer("s", rows_per_shard=100) as w:
        w.write_all(make_records("a", 250))
        w.write(unwritable)
    assert ds.versions == []
    assert shard_files(ds) == set()


def test_writing_after_commit_or_abort_raises(ds: Dataset) -> None:
    w = ds.writer("s")
    w.write(make_records("a", 1)[0])
    w.commit()
    with pytest.raises(DatasetError, match="already committed"):
        w.write(make_records("b", 1)[0])
    with pytest.raises(DatasetError, match="already committed"):
        w.commit()
    with pytest.raises(DatasetError, match="already committed"):
        w.abort()
    assert list(ds.records(1)) == make_records("a", 1)

    aborted = ds.writer("s")
    aborted.write(make_records("c", 1)[0])
    aborted.abort()
    with pytest.raises(DatasetError, match="aborted"):
        aborted.write(make_records("c", 1)[0])
    with pytest.raises(DatasetError, match="aborted"):
        aborted.commit()
    assert [v.version for v in ds.versions] == [1]


def test_explicit_commit_inside_the_block_commits_once(ds: Dataset) -> None:
    with ds.writer("s") as w:
        w.write_all(make_records("a", 3))
        committed = w.commit()
    assert ds.versions == [committed]


def test_an_error_after_commit_keeps_the_committed_version(ds: Dataset) -> None:
    with pytest.raises(RuntimeError), ds.writer("s") as w:
        w.write_all(make_records("a", 3))
        w.commit()
        raise RuntimeError("after the commit")
    assert list(Dataset.open(ds.path).records(1)) == make_records("a", 3)


def test_an_open_writer_is_invisible_to_readers(ds: Dataset) -> None:
    ds.write(make_records("a", 2), stage="s")
    files = shard_files(ds)
    with ds.writer("s", rows_per_shard=1000) as w:
        w.write_all(make_records("b", 2500))
        assert len(shard_files(ds) - files) == 3  # two finished shards and an open one
        reader = Dataset.open(ds.path)
        assert [v.version for v in reader.versions] == [1]
        assert list(reader.records()) == make_records("a", 2)
    assert list(reader.records()) == make_records("b", 2500)


# -- shards and streaming -------------------------------------------------------------


def test_rows_per_shard_rolls_over_and_reads_back_in_order(ds: Dataset) -> None:
    written = make_records("a", 3500)
    with ds.writer("s", rows_per_shard=1000) as w:
        w.write_all(written)
    shards = ds.version().shards
    assert [pq.ParquetFile(ds.path / s).metadata.num_rows for s in shards] == [
        1000,
        1000,
        1000,
        500,
    ]
    assert ds.count() == 3500
    assert list(ds.records()) == written
    batches = list(ds.batches(batch_size=300))
    assert all(0 < len(b) <= 300 for b in batches)
    assert [r for b in batches for r in b] == written


@pytest.mark.parametrize("rows", [0, -1])
def test_rows_per_shard_must_be_positive(ds: Dataset, rows: int) -> None:
    with pytest.raises(ValueError, match="rows_per_shard"):
        ds.writer("s", rows_per_shard=rows)


@settings(max_examples=50, deadline=None)
@given(st.lists(records, max_size=4))
def test_records_round_trip_through_parquet(written: list[Record]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ds = Dataset.create(Path(tmp) / "ds")
        with ds.writer("s", rows_per_shard=2) as w:
            w.write_all(written)
        back = list(Dataset.open(ds.path).records())
    assert back == written
    assert [r.model_dump_json() for r in back] == [r.model_dump_json() for r in written]


def test_batches_stream_instead_of_loading_everything(ds: Dataset) -> None:
    n, sample = 12_000, 2_000
    template = make_records("t", 1)[0]
    ds.write(
        (template.model_copy(update={"id": f"r{i}", "metadata": {"i": i}}) for i in range(n)),
        stage="big",
    )

    tracemalloc.start()
    try:
        held = next(ds.batches(batch_size=sample))
        holding_all = tracemalloc.get_traced_memory()[0] * (n // sample)
        del held
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        seen = 0
        for batch in ds.batches(batch_size=200):
            seen += len(batch)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()

    assert seen == n
    assert peak < holding_all / 5, (peak, holding_all)


# -- concurrency ----------------------------------------------------------------------


def _commit_versions(path: str, worker: int, rounds: int, barrier: Any) -> None:
    ds = Dataset.open(path)
    for round_ in range(rounds):
        w = ds.writer("worker", params={"worker": worker, "round": round_})
        w.write_all(make_records(f"{worker}-{round_}", 20))
        barrier.wait()  # everyone commits at the same moment
        w.commit()


def test_concurrent_commits_from_processes_are_all_kept(ds: Dataset) -> None:
    ds.write(make_records("base", 1), stage="ingest")
    workers, rounds = 3, 3
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    procs = [
        ctx.Process(target=_commit_versions, args=(str(ds.path), i, rounds, barrier))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * workers

    versions = ds.versions
    assert [v.version for v in versions] == list(range(1, 2 + workers * rounds))
    made = sorted((v.params["worker"], v.params["round"]) for v in versions[1:])
    assert made == [(w, r) for w in range(workers) for r in range(rounds)]
    for v in versions[1:]:
        assert v.parent is not None and v.parent < v.version
        tag = f"{v.params['worker']}-{v.params['round']}"
        assert list(ds.records(v.version)) == make_records(tag, 20)
