"""Datasets on disk: Parquet shards, a JSON manifest, versions and lineage.

Layout of a dataset directory::

    manifest.json        schema version, name, and every committed version
    shards/<uuid>.parquet
    .lock                serialises commits between processes

A version lists the shards it is made of, its parent version, the stage that made it,
the stage's parameters and counts. Shards are never rewritten: a new version writes new
shards and may reuse its parent's (``extend=True``). A version exists once it is in
``manifest.json``, which is replaced atomically (temp file, fsync, rename), so a process
killed at any moment leaves every committed version readable; at worst it leaves an
unreferenced shard behind, which readers never see.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field, JsonValue

from datamill.arrow import SCHEMA, from_batch, to_table
from datamill.errors import DatasetError
from datamill.records import Record, utc_now

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SHARDS = "shards"


class Version(BaseModel):
    version: int
    parent: int | None
    stage: str
    params: dict[str, JsonValue] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    stats: dict[str, JsonValue] = Field(default_factory=dict)  # e.g. tokens, cost, failures
    shards: list[str]
    created_at: datetime = Field(default_factory=utc_now)


class Manifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    name: str
    versions: list[Version] = Field(default_factory=list)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Dataset:
    """A versioned dataset directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, name: str | None = None) -> Dataset:
        """Create an empty dataset, or open it if it already exists."""
        ds = cls(path)
        if (ds.path / MANIFEST).exists():
            return ds.open(path)
        (ds.path / SHARDS).mkdir(parents=True, exist_ok=True)
        with ds._locked():
            if not (ds.path / MANIFEST).exists():
                ds._save(Manifest(name=name or ds.path.name))
        return ds

    @classmethod
    def open(cls, path: str | Path) -> Dataset:
        ds = cls(path)
        ds.manifest()  # fail now, with a clear message, if it is not a dataset
        return ds

    def manifest(self) -> Manifest:
        file = self.path / MANIFEST
        try:
            raw = file.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise DatasetError(f"{self.path}: not a datamill dataset (no {MANIFEST})") from None
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValueError as e:
            raise DatasetError(f"{file}: unreadable manifest: {e}") from None
        if manifest.schema_version > SCHEMA_VERSION:
            raise DatasetError(
                f"{file}: schema version {manifest.schema_version} is newer than this "
                f"datamill understands ({SCHEMA_VERSION}); upgrade datamill"
            )
        return manifest

    @property
    def versions(self) -> list[Version]:
        return self.manifest().versions

    def version(self, number: int | None = None) -> Version:
        """A committed version; the latest when ``number`` is None."""
        versions = self.versions
        if not versions:
            raise DatasetError(f"{self.path}: dataset has no versions yet")
        if number is None:
            return versions[-1]
        for v in versions:
            if v.version == number:
                return v
        known = ", ".join(str(v.version) for v in versions)
        raise DatasetError(f"{self.path}: no version {number} (versions: {known})")

    def batches(self, version: int | None = None, batch_size: int = 1024) -> Iterator[list[Record]]:
        """Stream a version's records in batches; memory stays flat whatever the size."""
        for shard in self.version(version).shards:
            file = pq.ParquetFile(self.path / shard)
            for batch in file.iter_batches(batch_size=batch_size):
                yield from_batch(batch)

    def records(self, version: int | None = None, batch_size: int = 1024) -> Iterator[Record]:
        for batch in self.batches(version, batch_size):
            yield from batch

    def column(self, name: str, version: int | None = None) -> Iterator[object]:
        """Stream one column's raw values, without building records."""
        for shard in self.version(version).shards:
            for batch in pq.ParquetFile(self.path / shard).iter_batches(columns=[name]):
                yield from batch.column(0).to_pylist()

    def count(self, version: int | None = None) -> int:
        return sum(
            pq.ParquetFile(self.path / s).metadata.num_rows for s in self.version(version).shards
        )

    def writer(
        self,
        stage: str,
        params: dict[str, JsonValue] | None = None,
        parent: int | Literal["latest"] | None = "latest",
        extend: bool = False,
        rows_per_shard: int = 100_000,
    ) -> VersionWriter:
        """Start a new version whose parent is ``parent``: a version number, the latest
        version (the default; none if the dataset is empty) or None for a new root, as a
        generation run from scratch is.

        With ``extend`` the new version keeps every record of its parent and appends.
        """
        if parent == "latest":
            versions = self.versions
            parent = versions[-1].version if versions else None
        if rows_per_shard < 1:
            raise ValueError(f"rows_per_shard must be at least 1, not {rows_per_shard}")
        # Looked up even without ``extend``, so lineage never names a version that is not there.
        parent_shards = self.version(parent).shards if parent is not None else []
        base = parent_shards if extend else []
        return VersionWriter(self, stage, params or {}, parent, base, rows_per_shard)

    def write(
        self,
        records: Iterable[Record],
        stage: str,
        params: dict[str, JsonValue] | None = None,
        parent: int | Literal["latest"] | None = "latest",
        extend: bool = False,
    ) -> Version:
        """Write ``records`` as a new version and commit it."""
        with self.writer(stage, params, parent=parent, extend=extend) as w:
            w.write_all(records)
        return w.committed  # type: ignore[return-value]

    # -- internals ----------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, manifest: Manifest) -> None:
        atomic_write_bytes(self.path / MANIFEST, manifest.model_dump_json(indent=2).encode())

    def _commit(self, version: Version) -> Version:
        with self._locked():
            manifest = self.manifest()
            version.version = max((v.version for v in manifest.versions), default=0) + 1
            manifest.versions.append(version)
            self._save(manifest)
        return version


class VersionWriter:
    """Writes records into new shards; commits the version on a clean exit, else discards it.

    Rows are flushed as Parquet row groups of ``batch_size``, so memory stays flat. Records
    become Arrow columns ``chunk_size`` at a time as they come: they are let go young, so
    the garbage collector does not keep walking thousands of them, and no single write
    stops the caller for long (a generation run's event loop, say).
    """

    batch_size = 2048
    chunk_size = 256

    def __init__(
        self,
        dataset: Dataset,
        stage: str,
        params: dict[str, JsonValue],
        parent: int | None,
        base_shards: list[str],
        rows_per_shard: int,
    ) -> None:
        self.dataset = dataset
        self.stage, self.params, self.parent = stage, params, parent
        self.shards = list(base_shards)
        self._new_shards: list[str] = []
        self.rows_per_shard = rows_per_shard
        self.counts: dict[str, int] = {
            "records": sum(pq.ParquetFile(dataset.path / s).metadata.num_rows for s in base_shards)
        }
        self.stats: dict[str, JsonValue] = {}
        self.committed: Version | None = None
        self._buffer: list[Record] = []  # not converted yet
        self._tables: list[pa.Table] = []  # converted, not written yet
        self._converted = 0  # rows in _tables
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._rows_in_shard = 0
        self._closed = False

    def __enter__(self) -> VersionWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:  # committed or aborted explicitly inside the block
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def write(self, record: Record) -> None:
        if self._closed:
            raise DatasetError("this version is already committed or aborted")
        self._buffer.append(record)
        self.counts["records"] += 1
        if len(self._buffer) >= self.chunk_size:
            self._convert()
            if self._converted >= self.batch_size:
                self._flush()

    def write_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.write(record)

    def commit(self) -> Version:
        if self._closed:
            raise DatasetError("this version is already committed or aborted")
        try:
            self._flush()
            self._close_shard()
            fsync_dir(self.dataset.path / SHARDS)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self.committed = self.dataset._commit(
            Version(
                version=0,
                parent=self.parent,
                stage=self.stage,
                params=self.params,
                counts=self.counts,
                stats=self.stats,
                shards=self.shards,
            )
        )
        return self.committed

    def abort(self) -> None:
        """Drop what was written: nothing of this version becomes visible."""
        if self.committed is not None:
            raise DatasetError("this version is already committed")
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        for shard in self._new_shards:
            (self.dataset.path / shard).unlink(missing_ok=True)
        self._closed = True

    def _convert(self) -> None:
        if self._buffer:
            table = to_table(self._buffer)
            self._tables.append(table)
            self._converted += table.num_rows
            self._buffer = []

    def _flush(self) -> None:
        self._convert()
        if not self._tables:
            return
        rows = pa.concat_tables(self._tables)
        self._tables, self._converted = [], 0
        while rows.num_rows:
            room = self.rows_per_shard - self._rows_in_shard
            chunk, rows = rows.slice(0, room), rows.slice(room)
            if self._writer is None:
                self._tmp = self.dataset.path / SHARDS / f".{uuid.uuid4().hex}.parquet.tmp"
                self._writer = pq.ParquetWriter(self._tmp, SCHEMA, compression="zstd")
            self._writer.write_table(chunk)
            self._rows_in_shard += chunk.num_rows
            if self._rows_in_shard >= self.rows_per_shard:
                self._close_shard()

    def _close_shard(self) -> None:
        if self._writer is None or self._tmp is None:
            return
        self._writer.close()
        with open(self._tmp, "rb") as f:
            os.fsync(f.fileno())
        final = self._tmp.with_name(self._tmp.name[1:].removesuffix(".tmp"))
        os.replace(self._tmp, final)
        self._new_shards.append(f"{SHARDS}/{final.name}")
        self.shards.append(self._new_shards[-1])
        self._writer, self._tmp, self._rows_in_shard = None, None, 0
