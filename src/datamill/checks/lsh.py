"""What near-duplicate detection remembers: LSH buckets in memory, sketches on disk.

A kept text costs 8 bytes per band in memory (128 bytes with the default 16 bands; the
index also keeps a fixed 8 MB filter), 14 bytes for where its sketch lies in a file and 8
for where its id does. The shingle sketches themselves (4 bytes a shingle) are in files
the workers wrote, or in a temporary file unlinked on creation, as are the ids; they are
read back only for the few LSH candidates that need verifying.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Callable
from typing import IO

import numpy as np

_LOW32 = np.uint64(0xFFFFFFFF)
_FILTER_BITS = 26  # a bit per value of a key's top 26 bits: 8 MB, whatever the texts


class BandIndex:
    """LSH buckets: (band key, text number) pairs in sorted numpy arrays.

    Each pair is one uint64, the top 32 bits of the key above the text number. Pairs are
    kept in sorted runs, each at least twice as long as the next: a batch of new pairs is a
    run of its own, and the last two runs merge while they break that rule (a binary
    counter), so a pair is copied about log2(pairs / batch) times in all and there are as
    many runs. A lookup is a binary search in each run, for the keys that pass a filter
    first: one bit per value of a key's top 26 bits, set for every stored key, so that most
    keys of a new text, stored nowhere, cost one memory read. Keys that agree on their top
    32 bits are taken as equal: the rare stranger this lets in is a candidate that fails
    verification.
    """

    KEY_BITS = 32  # the top bits of a key that count

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []  # longest first
        self._filter = np.zeros(1 << (_FILTER_BITS - 3), np.uint8)

    def add(self, keys: np.ndarray, ids: np.ndarray, order: np.ndarray | None = None) -> None:
        """Store each key (uint64, or its top 32 bits as uint32) with its id. ``order``, if
        known, sorts ``keys`` stably (and ids do not decrease along ``keys``), which spares
        a sort."""
        keys = _top(keys.ravel())
        if not len(keys):
            return
        byte, bit = _filter_bits(keys)
        self._filter[byte] |= bit  # of two bits in one byte, one may be lost: set it again
        lost = self._filter[byte] & bit == 0
        np.bitwise_or.at(self._filter, byte[lost], bit[lost])
        packed = keys | ids.ravel().astype(np.uint64)
        run = packed[order] if order is not None else packed
        if order is None or (run[1:] < run[:-1]).any():  # keys unequal in their low bits
            run = np.sort(run)
        runs = self._runs
        runs.append(run)
        while len(runs) > 1 and len(runs[-2]) < 2 * len(runs[-1]):
            merged = np.concatenate(runs[-2:])
            del runs[-2:]  # freed before the merge, which sorts in place
            merged.sort(kind="stable")  # of two sorted runs: a merge
            runs.append(merged)

    def lookup(
        self, keys: np.ndarray, order: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every stored pair whose key is asked for: the position of the key in ``keys``
        and the text number stored under it. ``order``, if known, sorts ``keys``."""
        keys = _top(keys.ravel())
        byte, bit = _filter_bits(keys)
        maybe = self._filter[byte] & bit != 0
        if order is None:
            asked = np.flatnonzero(maybe)
            asked = asked[np.argsort(keys[asked], kind="stable")]  # sorted needles search faster
        else:
            asked = order[maybe[order]]
        want = keys[asked]
        positions, found = [np.zeros(0, np.int64)], [np.zeros(0, np.uint32)]
        for run in self._runs:
            if not len(want):
                break
            first = np.searchsorted(run, want)
            near = run[np.minimum(first, len(run) - 1)]
            hit = np.flatnonzero((near ^ want) <= _LOW32)  # the same 32 key bits
            if not len(hit):
                continue
            firsts = first[hit]
            counts = np.searchsorted(run, want[hit] | _LOW32, side="right") - firsts
            ends = np.cumsum(counts)
            at = np.arange(ends[-1]) + np.repeat(firsts - ends + counts, counts)
            positions.append(np.repeat(asked[hit], counts))
            found.append((run[at] & _LOW32).astype(np.uint32))
        return np.concatenate(positions), np.concatenate(found)

    @property
    def nbytes(self) -> int:
        return self._filter.nbytes + sum(run.nbytes for run in self._runs)


def _top(keys: np.ndarray) -> np.ndarray:
    """Each key's top 32 bits, in place in a uint64. Keys may come as those bits alone
    (uint32), as workers send them."""
    if keys.dtype == np.uint32:
        return keys.astype(np.uint64) << np.uint64(32)
    return keys & ~_LOW32


def _filter_bits(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each key's bit lies in the filter: its byte and a mask of the bit."""
    top = keys >> np.uint64(64 - _FILTER_BITS)
    return (top >> np.uint64(3)).astype(np.int64), np.left_shift(1, top & np.uint64(7)).astype(
        np.uint8
    )


def write_all(write: Callable[[memoryview], int], data: bytes | memoryview | np.ndarray) -> int:
    """Write every byte of ``data`` (contiguous) with ``write``, which, unbuffered, may
    take only part of them; the number of bytes."""
    view = memoryview(data).cast("B")
    size = len(view)
    while view:
        view = view[write(view) :]
    return size


def room(array: np.ndarray, used: int, needed: int) -> np.ndarray:
    """``array``, or a copy of its first ``used`` items with room for ``needed``, grown by
    a quarter more: little slack, few copies."""
    if needed <= len(array):
        return array
    grown = np.zeros(needed * 5 // 4 + 1024, array.dtype)
    grown[:used] = array[:used]
    return grown


class Spill:
    """Byte strings appended to a temporary file (unlinked at once, gone when closed) and
    read back by number; memory holds 8 bytes per string, where it ends."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (lives with self)
        self._ends = np.zeros(1024, np.int64)
        self.count = 0

    def add(self, data: bytes | memoryview, ends: np.ndarray) -> None:
        """Strings in order: their bytes, one after another, and where each ends in them."""
        self._ends = room(self._ends, self.count + 1, self.count + 1 + len(ends))
        end = int(self._ends[self.count])
        self._ends[self.count + 1 : self.count + 1 + len(ends)] = end + np.asarray(ends)
        write_all(self._file.write, data)
        self.count += len(ends)

    def get(self, number: int) -> bytes:
        start, end = self._ends[number : number + 2].tolist()
        return os.pread(self._file.fileno(), end - start, start)

    @property
    def nbytes(self) -> int:
        return self._ends.nbytes


class SketchStore:
    """The shingle-hash sketch of every indexed text, numbered from 0 in order: where it
    lies in a file, the store's own temporary file (unlinked at once) or one a worker wrote.
    Memory holds 14 bytes a text."""

    def __init__(self) -> None:
        self._own = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (lives with self)
        self._written = 0  # bytes in the store's own file
        self._fds, self._paths = [self._own.fileno()], {"": 0}
        self._closing = weakref.finalize(self, _close, self._fds, self._own)
        self._file = np.zeros(1024, np.uint16)
        self._start = np.zeros(1024, np.int64)
        self._length = np.zeros(1024, np.uint32)
        self.count = 0

    def add(
        self,
        hashes: np.ndarray,
        offsets: np.ndarray,
        rows: np.ndarray | None = None,
        spilled: tuple[str, int] | None = None,
    ) -> None:
        """The sketches of a chunk's ``rows`` (all if None), in order: flat uint32 ``hashes``
        and the ``offsets`` where each text's begin (from 0), or, with ``spilled``, the file
        and byte where a worker wrote those hashes."""
        if spilled is None:  # the whole chunk, in one write
            file, base = 0, self._written
            self._written += write_all(self._own.write, np.ascontiguousarray(hashes, np.uint32))
        else:
            file, base = self._open(spilled[0]), spilled[1]
        offsets = np.asarray(offsets)
        rows = np.arange(len(offsets) - 1) if rows is None else rows
        needed = self.count + len(rows)
        self._file = room(self._file, self.count, needed)
        self._start = room(self._start, self.count, needed)
        self._length = room(self._length, self.count, needed)
        at = slice(self.count, self.count + len(rows))
        self._file[at] = file
        self._start[at] = base + 4 * offsets[rows]
        self._length[at] = offsets[rows + 1] - offsets[rows]
        self.count += len(rows)

    def get(self, number: int) -> np.ndarray:
        fd = self._fds[self._file[number]]
        data = os.pread(fd, 4 * int(self._length[number]), int(self._start[number]))
        return np.frombuffer(data, np.uint32)

    def fetch(self, spilled: tuple[str, int], begin: int, end: int) -> np.ndarray:
        """Hashes ``begin`` to ``end`` of a chunk a worker wrote at ``spilled``."""
        fd = self._fds[self._open(spilled[0])]
        return np.frombuffer(os.pread(fd, 4 * (end - begin), spilled[1] + 4 * begin), np.uint32)

    def close(self) -> None:
        self._closing()

    def _open(self, path: str) -> int:
        """The number of a worker's file, opened the first time it is named: the worker's
        folder may go (when workers stop), the open file stays readable."""
        if path not in self._paths:
            self._paths[path] = len(self._fds)
            self._fds.append(os.open(path, os.O_RDONLY))
        return self._paths[path]

    @property
    def nbytes(self) -> int:
        return self._file.nbytes + self._start.nbytes + self._length.nbytes


def _close(fds: list[int], own: IO[bytes]) -> None:
    for fd in fds[1:]:
        os.close(fd)
    own.close()


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
