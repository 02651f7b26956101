"""Train/test splits without leakage.

Records that would leak into each other are grouped, and a group goes to one side whole:

- records with the same prompt (same messages before the reply);
- records that share a parent (``provenance.parents``: the seed, document or conversation
  tree they came from);
- near-duplicates: prompts whose word n-gram sets overlap by ``threshold`` (Jaccard) or
  more, found by the MinHash LSH of the ``near_dup`` check (:mod:`datamill.checks.shingles`
  and :mod:`datamill.checks.lsh`) and verified on shingle sketches. Every text is indexed,
  so a chain of near-duplicates (A~B, B~C) is one group.

Groups are then dealt to the splits in a random order fixed by ``seed``, each to the split
furthest below its share, so the fractions hold to within one group's size and the same
seed always gives the same split. Two passes: the first keeps, per record, an 8-byte id
hash, a group link and the LSH index (about 1.3 KB per text with shingles); the second
(the export) asks :meth:`Split.side` for each record in the same order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from datamill.checks.base import Part, text_of
from datamill.checks.lsh import BandIndex, SketchStore, jaccard
from datamill.checks.shingles import Shingling, sketch_texts
from datamill.errors import DatamillError
from datamill.records import Record, content_id

BATCH = 4096
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def parse_split(text: str) -> dict[str, float]:
    """``"test=0.1"`` or ``"validation=0.1,test=0.1"``: the named fractions; ``train``
    takes what is left (and must be left something, unless named itself)."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        try:
            fraction = float(value)
        except ValueError:
            raise DatamillError(f"bad split {part.strip()!r}: expected NAME=FRACTION") from None
        if not _NAME.match(name) or name in fractions:
            raise DatamillError(f"bad split name {name!r}: a word, given once")
        if not 0 < fraction <= 1:
            raise DatamillError(f"split {name}: the fraction must be in (0, 1], not {value}")
        fractions[name] = fraction
    rest = 1 - sum(fractions.values())
    if rest < -1e-9 or ("train" in fractions and abs(rest) > 1e-9):
        raise DatamillError(f"split fractions add up to {1 - rest:g}, not 1")
    if "train" not in fractions:
        if rest <= 1e-9:
            raise DatamillError("split fractions leave nothing for train")
        fractions = {"train": rest, **fractions}
    return fractions


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class _Groups:
    """Union-find over record numbers; the root of a group is its first record."""

    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class Split:
    names: list[str]
    which: np.ndarray  # split index per record number
    ids: np.ndarray  # 64-bit id hash per record number, to catch a changed input
    groups: int
    near_duplicate_links: int

    def side(self, number: int, record: Record) -> str:
        if number >= len(self.ids) or self.ids[number] != np.uint64(_hash64(record.id)):
            raise DatamillError("the records changed between the two passes of the split")
        return self.names[int(self.which[number])]

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.which, minlength=len(self.names))
        return {name: int(n) for name, n in zip(self.names, found, strict=True)}


def split_records(
    records: Iterable[Record],
    fractions: dict[str, float],
    seed: int = 0,
    threshold: float = 0.8,
    on: Part = "prompt",
    how: Shingling | None = None,
) -> Split:
    """Group ``records`` (first pass) and deal the groups to the splits."""
    how = how or Shingling()
    groups, ids = _Groups(), []
    firsts: dict[int, int] = {}  # prompt or parent hash → first record number with it
    index, sketches, indexed = BandIndex(), SketchStore(), []  # indexed text → record number
    links = 0
    for batch in _batches(records, BATCH):
        numbers = [groups.add() for _ in batch]
        for number, record in zip(numbers, batch, strict=True):
            ids.append(_hash64(record.id))
            keys = [f"prompt:{content_id(record.prompt)}"]
            keys += [f"parent:{p}" for p in record.provenance.parents]
            for key in keys:
                groups.union(number, firsts.setdefault(_hash64(key), number))
        links += _link_near_duplicates(
            [text_of(r, on) for r in batch],
            numbers,
            how,
            threshold,
            groups,
            index,
            sketches,
            indexed,
        )
    n = len(ids)
    roots = np.fromiter((groups.find(i) for i in range(n)), np.int64, n)
    names = list(fractions)
    return Split(
        names,
        _deal(roots, [fractions[k] for k in names], seed),
        np.array(ids, np.uint64),
        len(np.unique(roots)),
        links,
    )


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


def _link_near_duplicates(
    texts: list[str],
    numbers: list[int],
    how: Shingling,
    threshold: float,
    groups: _Groups,
    index: BandIndex,
    sketches: SketchStore,
    indexed: list[int],
) -> int:
    """Index a batch's texts and join each to every indexed near-duplicate; returns how
    many new links were made."""
    sk = sketch_texts(texts, how)
    rows = np.flatnonzero(sk.sizes)  # a text without words matches nothing
    if not len(rows):
        return 0
    first = len(indexed)
    starts, lengths = sk.offsets[rows], np.diff(sk.offsets)[rows]
    ends = np.cumsum(lengths)
    picked = np.arange(ends[-1]) + np.repeat(starts - ends + lengths, lengths)
    sketches.add(sk.hashes[picked], np.concatenate([[0], ends]))
    indexed += [numbers[row] for row in rows.tolist()]
    mine = np.arange(first, first + len(rows), dtype=np.uint32)
    index.add(sk.keys[rows], np.repeat(mine, sk.keys.shape[1]))
    asked, found = index.lookup(sk.keys[rows].ravel())
    bands = sk.keys.shape[1]
    pairs = {
        (min(a, b), max(a, b))
        for a, b in zip((first + asked // bands).tolist(), found.tolist(), strict=True)
        if a != b
    }
    links = 0
    for a, b in sorted(pairs):
        ra, rb = indexed[a], indexed[b]
        if groups.find(ra) == groups.find(rb):
            continue
        if jaccard(sketches.get(a), sketches.get(b), how.sketch) >= threshold:
            groups.union(ra, rb)
            links += 1
    return links


def _deal(roots: np.ndarray, fractions: list[float], seed: int) -> np.ndarray:
    """Each group to the split furthest below its share, groups in a seeded random order."""
    unique, inverse, sizes = np.unique(roots, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    target = np.array(fractions) * len(roots)
    filled = np.zeros(len(fractions))
    side = np.zeros(len(unique), np.int64)
    for g in order.tolist():
        k = int(np.argmax(target - filled))
        side[g] = k
        filled[k] += sizes[g]
    return side[inverse]
