"""What near-duplicate detection remembers: LSH buckets in memory, sketches on disk.

A kept text costs 8 bytes per band in memory (128 bytes with the default 16 bands) and 8
per spilled item (its sketch, its id) for where the item lies in a temporary file. The
shingle sketches themselves (4 bytes a shingle) and the ids go to that file, unlinked on
creation, and are read back only for the few LSH candidates that need verifying.
"""

from __future__ import annotations

import os
import tempfile
from itertools import pairwise

import numpy as np

_PART_BITS = 3  # keys fall into 8 parts by their top bits
_LOW32 = np.uint64(0xFFFFFFFF)
_FILTER_BITS = 27  # a bit per value of a key's top 27 bits: 16 MB, whatever the texts


class BandIndex:
    """LSH buckets: (band key, text number) pairs in sorted numpy arrays.

    Keys fall into 8 parts by their top 3 bits. A part keeps each pair as one uint64, the
    next 32 bits of the key above the text number, in two sorted runs: new pairs merge into
    the small run, and the small run into the large one once it reaches a quarter of its
    size, so a pair is copied a handful of times in all and a merge copies one part, not the
    whole index. A lookup is a binary search in each run, for the keys that pass a filter
    first: one bit per value of a key's top 27 bits, set for every stored key, so that most
    keys of a new text, stored nowhere, cost one memory read. Keys that agree on their top
    35 bits are taken as equal: the rare stranger this lets in is a candidate that fails
    verification.
    """

    KEY_BITS = 32 + _PART_BITS  # the top bits of a key that count

    def __init__(self) -> None:
        empty = np.zeros(0, np.uint64)
        self._runs = [[empty, empty] for _ in range(1 << _PART_BITS)]  # large, small
        self._filter = np.zeros(1 << (_FILTER_BITS - 3), np.uint8)

    def add(self, keys: np.ndarray, ids: np.ndarray, order: np.ndarray | None = None) -> None:
        """Store each key with its id. ``order``, if known, sorts ``keys`` stably, and ids
        do not decrease along keys in the order given."""
        keys = keys.ravel()
        byte, bit = _filter_bits(keys)
        self._filter[byte] |= bit  # of two bits in one byte, one may be lost: set it again
        lost = self._filter[byte] & bit == 0
        np.bitwise_or.at(self._filter, byte[lost], bit[lost])
        presorted = order is not None
        order, bounds, low = _by_part(keys, order)
        packed = low | ids.ravel()[order].astype(np.uint64)
        for p, (start, end) in enumerate(pairwise(bounds)):
            if start == end:
                continue
            large, small = self._runs[p]
            new = packed[start:end] if presorted else np.sort(packed[start:end])
            small = np.sort(np.concatenate([small, new]), kind="stable")
            if 4 * len(small) >= len(large):  # stable sort of two sorted runs: a merge
                large, small = np.sort(np.concatenate([large, small]), kind="stable"), small[:0]
            self._runs[p] = [large, small]

    def lookup(
        self, keys: np.ndarray, order: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every stored pair whose key is asked for: the position of the key in ``keys``
        and the text number stored under it. ``order``, if known, sorts ``keys``."""
        byte, bit = _filter_bits(keys)
        maybe = self._filter[byte] & bit != 0
        if order is None:
            asked = np.flatnonzero(maybe)
        else:  # still sorted
            asked, order = order[maybe[order]], np.arange(np.count_nonzero(maybe))
        positions, found = self._search(keys[asked], order)
        return asked[positions], found

    def _search(self, keys: np.ndarray, order: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        order, bounds, low = _by_part(keys, order)  # sorted needles search faster
        positions, found = [np.zeros(0, np.int64)], [np.zeros(0, np.uint32)]
        for p, (start, end) in enumerate(pairwise(bounds)):
            want = low[start:end]
            for run in self._runs[p]:
                if not len(run) or not len(want):
                    continue
                first = np.searchsorted(run, want)
                near = run[np.minimum(first, len(run) - 1)]
                hit = np.flatnonzero((near ^ want) <= _LOW32)  # the same 32 key bits
                if not len(hit):
                    continue
                firsts = first[hit]
                counts = np.searchsorted(run, want[hit] | _LOW32, side="right") - firsts
                ends = np.cumsum(counts)
                at = np.arange(ends[-1]) + np.repeat(firsts - ends + counts, counts)
                positions.append(np.repeat(order[start + hit], counts))
                found.append((run[at] & _LOW32).astype(np.uint32))
        return np.concatenate(positions), np.concatenate(found)

    @property
    def nbytes(self) -> int:
        return self._filter.nbytes + sum(run.nbytes for runs in self._runs for run in runs)


def _filter_bits(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each key's bit lies in the filter: its byte and a mask of the bit."""
    top = keys >> np.uint64(64 - _FILTER_BITS)
    return (top >> np.uint64(3)).astype(np.int64), np.left_shift(1, top & np.uint64(7)).astype(
        np.uint8
    )


def _by_part(
    keys: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """An order of ``keys`` that groups them by part (``order`` if given: one that sorts
    them), where each part begins and ends in it, and the next 32 bits of each key in that
    order, shifted up to make room for a text number."""
    part = (keys >> np.uint64(64 - _PART_BITS)).astype(np.uint8)
    if order is None:
        order = np.argsort(part, kind="stable")  # a radix sort on bytes
    bounds = np.searchsorted(part[order], np.arange((1 << _PART_BITS) + 1)).tolist()
    return order, bounds, (keys[order] >> np.uint64(32 - _PART_BITS)) << np.uint64(32)


class Spill:
    """Byte strings appended to a temporary file (unlinked at once, gone when closed) and
    read back by number; memory holds 8 bytes per string, where it ends."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (lives with self)
        self._ends = np.zeros(1024, np.int64)
        self.count = 0

    def add(self, data: bytes | memoryview, ends: np.ndarray) -> None:
        """Strings in order: their bytes, one after another, and where each ends in them."""
        if self.count + len(ends) >= len(self._ends):  # grow by a quarter: little slack
            grown = np.zeros((self.count + len(ends)) * 5 // 4 + 1024, np.int64)
            grown[: self.count + 1] = self._ends[: self.count + 1]
            self._ends = grown
        end = int(self._ends[self.count])
        self._ends[self.count + 1 : self.count + 1 + len(ends)] = end + np.asarray(ends)
        view = memoryview(data).cast("B")
        while view:  # an unbuffered write may take part of the bytes
            view = view[self._file.write(view) :]
        self.count += len(ends)

    def get(self, number: int) -> bytes:
        start, end = self._ends[number : number + 2].tolist()
        return os.pread(self._file.fileno(), end - start, start)

    @property
    def nbytes(self) -> int:
        return self._ends.nbytes


class SketchStore:
    """The shingle-hash sketch of every indexed text, numbered from 0 in order, spilled."""

    def __init__(self) -> None:
        self._spill = Spill()

    def add(self, hashes: np.ndarray, offsets: np.ndarray) -> None:
        """Texts in order, as flat uint32 hashes and their offsets (from 0)."""
        self._spill.add(np.ascontiguousarray(hashes, np.uint32), 4 * np.asarray(offsets[1:]))

    def get(self, number: int) -> np.ndarray:
        return np.frombuffer(self._spill.get(number), np.uint32)

    @property
    def count(self) -> int:
        return self._spill.count

    @property
    def nbytes(self) -> int:
        return self._spill.nbytes


def jaccard(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Jaccard similarity of two sketches of at most ``k`` sorted distinct hashes.

    Exact when both texts have fewer than ``k`` distinct shingles (the sketches are the
    whole sets); otherwise the bottom-k estimate: the share of the union's ``k`` smallest
    hashes that both sketches hold.
    """
    if not len(a) or not len(b):
        return 0.0
    held = b[np.minimum(np.searchsorted(b, a), len(b) - 1)] == a  # a's hashes b holds too
    shared = int(np.count_nonzero(held))
    if len(a) < k and len(b) < k:
        return shared / (len(a) + len(b) - shared)
    union = np.union1d(a, b)[:k]
    return int(np.count_nonzero(a[held] <= union[-1])) / len(union)
