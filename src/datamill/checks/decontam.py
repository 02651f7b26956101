"""Benchmark contamination: records that share long word n-grams with benchmark items.

As in the GPT-3 paper (Brown et al. 2020, appendix C), texts are normalised (case,
punctuation and spacing, as :func:`~datamill.checks.dedup.normalise` does) and cut into
word n-grams, 13 words long by default; a record that shares one with a benchmark item is
contaminated by it. Shipped benchmarks: GSM8K's test questions, HumanEval's prompts and
MT-Bench's questions (``datamill/data/benchmarks``); users add JSONL files of their own.
Items shorter than ``n`` words have no n-gram and cannot be caught.

The index holds one 64-bit hash per distinct n-gram and is built once per process for
each set of benchmarks.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from datamill.checks.base import Part, RecordCheck, text_of
from datamill.checks.dedup import normalise
from datamill.checks.registry import register
from datamill.records import CheckResult, Record

# name: (file under data/benchmarks, fields holding the text, field holding the item's id;
# an item without one is named by its row number, from 0)
BUILTIN: dict[str, tuple[str, tuple[str, ...], str]] = {
    "gsm8k": ("gsm8k/test.jsonl", ("question",), "id"),
    "human_eval": ("human_eval/HumanEval.jsonl.gz", ("prompt",), "task_id"),
    "mt_bench": ("mt_bench/question.jsonl", ("turns",), "question_id"),
}


def ngram_hashes(text: str, n: int) -> set[int]:
    """The 64-bit hashes of the normalised text's word n-grams."""
    words = normalise(text).split()
    grams = (" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return {
        int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams
    }


@dataclass(frozen=True)
class Item:
    benchmark: str
    id: str
    ngrams: int


@dataclass
class NgramIndex:
    """Which benchmark items each n-gram hash belongs to."""

    n: int
    items: list[Item] = field(default_factory=list)
    owners: dict[int, list[int]] = field(default_factory=dict)

    def add(self, benchmark: str, item_id: str, text: str) -> None:
        hashes = ngram_hashes(text, self.n)
        if not hashes:
            return
        index = len(self.items)
        self.items.append(Item(benchmark, item_id, len(hashes)))
        for h in hashes:
            self.owners.setdefault(h, []).append(index)

    def shared(self, text: str) -> Counter[int]:
        """For each item sharing n-grams with ``text``: how many (by the item's index)."""
        found: Counter[int] = Counter()
        for h in ngram_hashes(text, self.n):
            found.update(self.owners.get(h, ()))
        return found


def _rows(source: Traversable) -> Iterator[tuple[int, dict[str, Any]]]:
    data = source.read_bytes()
    if source.name.endswith(".gz"):
        data = gzip.decompress(data)
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if line.strip():
            yield number, json.loads(line)


def _texts(row: dict[str, Any], fields: Iterable[str], where: str) -> str:
    parts: list[str] = []
    for name in fields:
        if name not in row:
            raise ValueError(f"{where}: no field '{name}'")
        value = row[name]
        parts.extend(value if isinstance(value, list) else [value])
    return "\n".join(str(p) for p in parts)


@cache
def build_index(
    n: int, benchmarks: tuple[str, ...], extra: tuple[tuple[str, str], ...]
) -> NgramIndex:
    """The index of the named shipped benchmarks and of the extra ``(path, field)`` files."""
    index = NgramIndex(n)
    folder = resources.files("datamill.data") / "benchmarks"
    sources: list[tuple[str, Traversable, tuple[str, ...], str]] = []
    for name in benchmarks:
        if name not in BUILTIN:
            raise ValueError(f"no benchmark '{name}'; shipped: {', '.join(BUILTIN)}")
        file, fields, id_field = BUILTIN[name]
        sources.append((name, folder / file, fields, id_field))
    for path, text_field in extra:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ValueError(f"no benchmark file {path}")
        sources.append((file.name.split(".")[0], file, (text_field,), "id"))
    for name, file, fields, id_field in sources:
        try:
            for row_number, (line, row) in enumerate(_rows(file)):
                item = str(row.get(id_field, row_number))
                index.add(name, item, _texts(row, fields, f"{file}, line {line}"))
        except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
            raise ValueError(f"cannot read the benchmark file {file}: {e}") from None
    return index


@register
class Decontam(RecordCheck):
    """Fails a record that shares ``min_shared`` n-grams with one benchmark item.

    The score is the largest share of one item's n-grams found in the record; details
    name the items (benchmark, id) and how many n-grams each shares.
    """

    name = "decontam"

    def __init__(
        self,
        n: int = 13,
        benchmarks: Iterable[str] = tuple(BUILTIN),
        extra: dict[str, str] | None = None,
        min_shared: int = 1,
        on: Part = "conversation",
    ) -> None:
        if n < 1 or min_shared < 1:
            raise ValueError("n and min_shared must be at least 1")
        self.n, self.min_shared, self.on = n, min_shared, on
        self.index = build_index(n, tuple(benchmarks), tuple(sorted((extra or {}).items())))

    def check(self, record: Record) -> CheckResult:
        shared = self.index.shared(text_of(record, self.on))
        items = self.index.items
        hits = [(i, k) for i, k in shared.most_common() if k >= self.min_shared]
        score = max((k / items[i].ngrams for i, k in shared.items()), default=0.0)
        matches = [
            {
                "benchmark": items[i].benchmark,
                "item": items[i].id,
                "shared": k,
                "of": items[i].ngrams,
            }
            for i, k in hits[:5]
        ]
        details = {"n": self.n, "matches": matches} if matches else {"n": self.n}
        return CheckResult(score=round(score, 4), passed=not hits, details=details)
