"""A Hugging Face dataset saved with ``save_to_disk``, read with pyarrow alone.

``datasets`` writes a directory with ``state.json`` (naming its Arrow files) and
``dataset_info.json``; a ``DatasetDict`` adds ``dataset_dict.json`` and one such
directory per split. The Arrow files are IPC streams, read batch by batch, so neither
``datasets`` nor memory for the whole table is needed. A split's name goes to
``metadata["split"]``. Rows take the shapes :func:`~datamill.importers.common.row_to_record`
reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from datamill.errors import InputError
from datamill.importers.common import Item, Rejected, row_to_record, to_record
from datamill.records import Record


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(str(path), None, None, f"cannot read: {e}") from None


def _arrow_files(directory: Path) -> list[Path]:
    state = _json(directory / "state.json")
    files = state.get("_data_files") if isinstance(state, dict) else None
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("filename"), str) for f in files
    ):
        raise InputError(str(directory / "state.json"), None, "_data_files", "missing or malformed")
    paths = [directory / f["filename"] for f in files]
    for p in paths:
        if p.parent != directory or not p.is_file():
            raise InputError(str(p), None, None, "Arrow file named in state.json is missing")
    return paths


def _splits(path: Path) -> list[tuple[str | None, Path]]:
    if (path / "dataset_dict.json").exists():
        splits = _json(path / "dataset_dict.json").get("splits")
        if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
            raise InputError(
                str(path / "dataset_dict.json"), None, "splits", "missing or malformed"
            )
        return [(s, path / s) for s in splits]
    return [(None, path)]


def read_hf(path: Path) -> Iterator[Record | Rejected]:
    for split, directory in _splits(path):
        files = _arrow_files(directory)  # every split's files are checked before any row
        for file in files:
            yield from _rows(file, split)


def _rows(file: Path, split: str | None) -> Iterator[Record | Rejected]:
    number = 0

    def build(row: dict[str, Any]) -> Record:
        record = row_to_record(row, file.name)
        if split is None:
            return record
        return record.model_copy(update={"metadata": {**record.metadata, "split": split}})

    try:
        with pa.memory_map(str(file)) as source, pa.ipc.open_stream(source) as reader:
            for batch in reader:
                for row in batch.to_pylist():
                    number += 1
                    yield to_record(Item(number, None, row), file, build)
    except (OSError, pa.ArrowException) as e:
        raise InputError(str(file), number + 1, None, f"cannot read Arrow file: {e}") from None
