"""Export files, one per split, in JSONL or Parquet, each appearing whole or not at all.

Rows are written aside and renamed into place on commit; on an error every temporary file
is removed and no earlier export file is touched. Parquet rows are written in row groups
of ``GROUP`` rows against the format's explicit Arrow schema, so memory stays flat and
every file of an export has the same columns, whatever the first rows held.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from datamill.export.rows import Row
from datamill.store import fsync_dir

FileFormat = Literal["jsonl", "parquet"]
GROUP = 1024


class _File:
    def __init__(self, path: Path, file_format: FileFormat, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        self.rows = 0
        self._jsonl: IO[str] | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._buffer: list[Row] = []
        if file_format == "jsonl":
            self._jsonl = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 -- closed in close()
        else:
            self._parquet = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def write(self, row: Row) -> None:
        self.rows += 1
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        self._buffer.append(row)
        if len(self._buffer) >= GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._buffer and self._parquet is not None:
            self._parquet.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self._buffer = []

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.flush()
            os.fsync(self._jsonl.fileno())
            self._jsonl.close()
        if self._parquet is not None:
            self._flush()
            self._parquet.close()
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())

    def discard(self) -> None:
        try:
            if self._jsonl is not None:
                self._jsonl.close()
            if self._parquet is not None:
                self._parquet.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class SplitFiles:
    """One file per split name; ``commit`` renames them all into place."""

    def __init__(self, paths: dict[str, Path], file_format: FileFormat, schema: pa.Schema) -> None:
        self._files: dict[str, _File] = {}
        try:
            for split, path in paths.items():
                self._files[split] = _File(path, file_format, schema)
        except BaseException:
            self.abort()
            raise

    def write(self, split: str, row: Row) -> None:
        self._files[split].write(row)

    @property
    def rows(self) -> dict[str, int]:
        return {split: f.rows for split, f in self._files.items()}

    def commit(self) -> None:
        try:
            for f in self._files.values():
                f.close()
        except BaseException:
            self.abort()
            raise
        for f in self._files.values():
            os.replace(f.tmp, f.path)
        for parent in {f.path.parent for f in self._files.values()}:
            fsync_dir(parent)

    def abort(self) -> None:
        for f in self._files.values():
            f.discard()

    def __enter__(self) -> SplitFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
