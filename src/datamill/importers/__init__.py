"""Importers: other tools' files → Records, at the edge (see :func:`read`).

Each importer yields records or :class:`~datamill.importers.common.Rejected` rows; bad
structure that makes the rest of the file unreadable (a truncated Arrow file, a JSON array
that does not parse) raises :class:`~datamill.errors.InputError` at once. Errors name the
file and the place (line, or item index and field), as :mod:`datamill.ingest` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from datamill.errors import InputError
from datamill.importers.common import Rejected, detect
from datamill.ingest import Rejects, read_records
from datamill.records import Record

FORMATS = ("auto", "records", "hf", "argilla", "labelstudio", "oasst", "hh-rlhf")


def read(
    path: str | Path,
    format: str = "auto",
    on_error: Literal["raise", "quarantine"] = "raise",
    rejects: Rejects | None = None,
    license: str | None = None,
) -> Iterator[Record]:
    """Stream the records of ``path`` read as ``format`` (``auto``: guessed from the file).
    ``license`` is written into every record's metadata, for the dataset card."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, None, "no such file or directory")
    name = detect(path) if format == "auto" else format
    if name == "records":
        items: Iterator[Record | Rejected] = read_records(path, on_error, rejects)
    elif name == "hf":
        from datamill.importers.hf import read_hf as reader
    elif name == "argilla":
        from datamill.importers.argilla import read_argilla as reader
    elif name == "labelstudio":
        from datamill.importers.labelstudio import read_labelstudio as reader
    elif name == "oasst":
        from datamill.importers.oasst import read_oasst as reader
    elif name == "hh-rlhf":
        from datamill.importers.hh_rlhf import read_hh as reader
    else:
        raise ValueError(f"unknown import format {format!r}; expected one of {', '.join(FORMATS)}")
    if name != "records":
        items = reader(path)
    return _finish(items, on_error, rejects, license)


def _finish(
    items: Iterator[Record | Rejected],
    on_error: str,
    rejects: Rejects | None,
    license: str | None,
) -> Iterator[Record]:
    for item in items:
        if isinstance(item, Rejected):
            if on_error != "quarantine" or rejects is None:
                raise item.error
            rejects.add(item.error, item.raw)
        elif license is not None:
            yield item.model_copy(update={"metadata": {**item.metadata, "license": license}})
        else:
            yield item


__all__ = ["FORMATS", "read"]
