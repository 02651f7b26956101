"""Read user files (JSONL, Parquet, CSV) into Records, one row at a time.

A row is one of three shapes: a full Record (``messages``, optional ``provenance``...),
a prompt/response pair (``prompt`` + optional ``response`` or ``completion``), or Alpaca
style (``instruction`` + optional ``input`` and ``output``). The last two take an optional
``system`` column and ``task``/``domain``/``language``; their other columns go to
``metadata``. A null, an empty CSV cell or an empty string in those text columns means
the value is absent.

Every bad row becomes an :class:`InputError` naming the file, line and field. With
``on_error="quarantine"`` it goes to a :class:`Rejects` file instead and reading goes on,
so every input row ends up as a Record or as a reject, never dropped.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from datamill.arrow import JSON_COLUMNS
from datamill.errors import InputError
from datamill.records import Record

# A full Record's nested fields, which CSV cells hold as JSON text.
JSON_TEXT_FIELDS = ("messages", *JSON_COLUMNS)
# The columns that make the messages of the two flat shapes; all others go to metadata.
PROMPT_COLUMNS = ("system", "prompt", "response", "completion")
ALPACA_COLUMNS = ("system", "instruction", "input", "output")
# csv refuses fields over 128 KiB by default; long documents are normal here. Still bounded,
# so an unclosed quote cannot swallow the rest of a huge file. (The limit is process-wide.)
CSV_FIELD_LIMIT = 1 << 26


class _Bad(Exception):
    """A row that cannot be read. Readers yield it rather than raise, so reading can go on."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


Row = dict[str, Any] | _Bad


class Rejects:
    """Writes rejected rows to a JSONL file: ``{"file", "line", "field", "reason", "raw"}``.

    The file is created (or replaced) on the first reject only, and flushed after every
    line so that it holds complete lines even if the process dies.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._file: IO[bytes] | None = None

    def add(self, error: InputError, raw: Any) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb")  # noqa: SIM115 -- closed by close()
        entry = {
            "file": error.file,
            "line": error.line,
            "field": error.field,
            "reason": error.reason,
            "raw": raw,
        }
        self._file.write(json.dumps(entry, ensure_ascii=False, default=str).encode() + b"\n")
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Rejects:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(
    path: str | Path,
    on_error: Literal["raise", "quarantine"] = "raise",
    rejects: Rejects | None = None,
) -> Iterator[Record]:
    """Stream the Records of a ``.jsonl``/``.json``/``.jsonl.gz``, ``.parquet`` or ``.csv`` file.

    Arguments are checked now; the file is read lazily as the iterator is consumed.
    """
    if on_error not in ("raise", "quarantine"):
        raise ValueError(f"on_error must be 'raise' or 'quarantine', not {on_error!r}")
    if on_error == "quarantine" and rejects is None:
        raise ValueError("on_error='quarantine' needs rejects=Rejects(path)")
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".jsonl", ".json", ".jsonl.gz")):
        rows = _jsonl_rows(path)
    elif name.endswith(".parquet"):
        rows = _parquet_rows(path)
    elif name.endswith(".csv"):
        rows = _csv_rows(path)
    else:
        reason = "unknown format; expected .jsonl, .jsonl.gz, .json, .parquet or .csv"
        raise InputError(str(path), None, None, reason)
    if not path.is_file():
        raise InputError(str(path), None, None, "no such file")
    return _records(path, rows, rejects if on_error == "quarantine" else None)


def _records(
    path: Path, rows: Iterable[tuple[int, Any, Row]], rejects: Rejects | None
) -> Iterator[Record]:
    for line, raw, row in rows:
        try:
            record = _to_record(row, path.name)
        except (_Bad, ValidationError) as e:
            error = InputError(str(path), line, *_field_and_reason(e))
            if rejects is None:
                raise error from None
            rejects.add(error, raw)
        else:
            yield record


def _field_and_reason(e: _Bad | ValidationError) -> tuple[str | None, str]:
    if isinstance(e, _Bad):
        return e.field, e.reason
    errors = e.errors(include_url=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ".".join(str(p) for p in first["loc"]) or None, first["msg"] + more


def _to_record(row: Row, file_name: str) -> Record:
    if isinstance(row, _Bad):
        raise row
    shapes = [
        key for key in ("messages", "prompt", "instruction") if row.get(key) not in ("", None)
    ]
    if len(shapes) != 1:
        found = f"found {' and '.join(shapes)}" if shapes else f"fields: {', '.join(row)}"
        raise _Bad(None, f"expected one of 'messages', 'prompt' or 'instruction' ({found})")
    provenance = {"source": "imported", "params": {"file": file_name}}
    if shapes == ["messages"]:
        data = {key: value for key, value in row.items() if value is not None}
        return Record.model_validate({"provenance": provenance, **data})

    used = PROMPT_COLUMNS if shapes == ["prompt"] else ALPACA_COLUMNS
    text = {key: row[key] for key in used if row.get(key) not in ("", None)}
    for key, value in text.items():
        if not isinstance(value, str):
            raise _Bad(key, "Input should be a valid string")
    if "response" in text and "completion" in text:
        raise _Bad(None, "expected 'response' or 'completion', not both")
    if "prompt" in text:
        user, answer = text["prompt"], text.get("response", text.get("completion"))
    else:
        user = "\n\n".join(text[key] for key in ("instruction", "input") if key in text)
        answer = text.get("output")
    rest = {key: value for key, value in row.items() if key not in used}
    messages = [{"role": "system", "content": text["system"]}] if "system" in text else []
    messages.append({"role": "user", "content": user})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    fields = {key: rest.pop(key) for key in ("task", "domain", "language") if key in rest}
    return Record.model_validate(
        {"messages": messages, **fields, "metadata": rest, "provenance": provenance}
    )


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse duplicate keys, which json.loads would resolve by silently keeping the last."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        keys = [key for key, _ in pairs]
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return obj


def _json_reason(e: ValueError) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON: {e.msg} at column {e.colno}"
    return f"invalid JSON: {e}"


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any, Row]]:
    # Binary lines: split on b"\n" only, so line numbers are physical lines, and bad UTF-8
    # is reported on its own line instead of failing a whole decoded chunk.
    line = 0
    try:
        with gzip.open(path) if path.name.lower().endswith(".gz") else open(path, "rb") as f:
            for line, data in enumerate(f, 1):
                try:
                    text = data.decode("utf-8-sig" if line == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    raw = data.decode(errors="backslashreplace").rstrip("\r\n")
                    yield line, raw, _Bad(None, f"invalid UTF-8 at byte {e.start + 1}")
                    continue
                if not text.strip(" \t\r\n"):  # JSON whitespace only: "\x1c" is not blank
                    continue
                text = text.rstrip("\r\n")  # so JSON error columns count within the line
                try:
                    value = json.loads(text, object_pairs_hook=_unique)
                except ValueError as e:
                    array = text.startswith("[")  # a whole-file JSON array, a common mistake
                    hint = " (expected one JSON object per line, not an array)" if array else ""
                    value = _Bad(None, _json_reason(e) + hint)
                if not isinstance(value, dict | _Bad):
                    value = _Bad(None, "not a JSON object")
                yield line, text, value
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # a corrupt or truncated .gz
        raise InputError(str(path), line + 1, None, f"corrupt gzip file: {e}") from None


def _decode_json_text(row: dict[str, Any]) -> Row:
    if row.get("messages") is None:
        return row
    row = dict(row)
    for key in JSON_TEXT_FIELDS:
        if isinstance(row.get(key), str):
            try:
                row[key] = json.loads(row[key], object_pairs_hook=_unique)
            except ValueError as e:
                return _Bad(key, _json_reason(e))
    return row


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any, Row]]:
    number = 0
    try:
        with pq.ParquetFile(path) as file:
            for batch in file.iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    number += 1
                    yield number, row, row
    except (OSError, pa.ArrowException) as e:
        raise InputError(str(path), None, None, f"cannot read Parquet file: {e}") from None


def _csv_rows(path: Path) -> Iterator[tuple[int, Any, Row]]:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    with open(path, "rb") as f:
        # Lines are decoded one by one (see _jsonl_rows). Bad bytes are kept as surrogates
        # and the row rejected below: an exception here would end the csv reader, and the file.
        reader = csv.reader(
            data.decode("utf-8-sig" if i == 0 else "utf-8", "surrogateescape")
            for i, data in enumerate(f)
        )
        header = next(reader, [])
        if len(set(header)) < len(header) or not _utf8(header):
            raise InputError(str(path), 1, None, "bad header: duplicate or invalid UTF-8 names")
        while True:
            start = reader.line_num + 1  # csv's line_num is where the row ends
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield start, None, _Bad(None, f"malformed CSV: {e}")
                continue
            if not cells:
                continue  # blank line
            bad = None
            if not _utf8(cells):
                cells = [
                    c.encode(errors="surrogateescape").decode(errors="backslashreplace")
                    for c in cells
                ]
                bad = _Bad(None, "invalid UTF-8")
            elif len(cells) != len(header):
                bad = _Bad(None, f"row has {len(cells)} cells, header has {len(header)}")
            raw = dict(zip(header, cells, strict=True)) if len(cells) == len(header) else cells
            yield start, raw, bad or _decode_json_text({k: cell or None for k, cell in raw.items()})


def _utf8(cells: list[str]) -> bool:
    try:
        "".join(cells).encode()
    except UnicodeEncodeError:
        return False
    return True
