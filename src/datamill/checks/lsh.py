"""What near-duplicate detection remembers: LSH buckets, and where sketches and ids lie.

The process's own memory stays bounded whatever the number of texts. The index keeps a
fixed 8 MB filter of its keys and sorted runs of (band key, text number) pairs, 8 bytes
a pair (128 bytes a text with the default 16 bands): the shorter runs in memory, under
twice a budget in all (2 MB by default), the longer ones in temporary files (unlinked on
creation) mapped read-only, so that their pages are the kernel's page cache, which it
drops under pressure, not the process's heap. Where each text's sketch lies (14 bytes)
and where its id ends (8 bytes) go to temporary files too, a block at a time: memory
holds the latest block (under 1 MB each). The shingle sketches themselves (4 bytes a
shingle) are in files the workers wrote or in a temporary file, as are the ids; all of
these are read back only for the few LSH candidates that need verifying.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import IO

import numpy as np

_LOW32 = np.uint64(0xFFFFFFFF)
_FILTER_BITS = 26  # a bit per value of a key's top 26 bits: 8 MB, whatever the texts
_MERGE_CHUNK = 1 << 18  # pairs taken from the runs at a time when a merge goes to a file
BLOCK = 1 << 16  # records held in memory before they go to a file


class BandIndex:
    """LSH buckets: (band key, text number) pairs in sorted numpy arrays.

    Each pair is one uint64, the top 32 bits of the key above the text number. Pairs are
    kept in sorted runs, each at least twice as long as the next: a batch of new pairs is a
    run of its own, and the last runs that break that rule merge, in one pass (a binary
    counter's carry), so a pair is copied at most log2(pairs / batch) times in all (about
    half that on average) and there are at most as many runs. Runs of up to
    ``memory_pairs`` pairs are arrays in memory, under twice that in all; a longer one is
    written to a temporary file in ``folder`` (the default temporary folder if None), a
    bounded chunk at a time, and mapped read-only: a binary search in it costs what one in
    memory does once its pages are cached, and those pages are the kernel's to drop. A
    lookup is a binary search in each run, for the keys that pass a filter first: one bit
    per value of a key's top 26 bits, set for every stored key, so that most keys of a new
    text, stored nowhere, cost one memory read. Keys that agree on their top 32 bits are
    taken as equal: the rare stranger this lets in is a candidate that fails verification.
    """

    KEY_BITS = 32  # the top bits of a key that count

    def __init__(self, memory_pairs: int = 1 << 18, folder: str | None = None) -> None:
        self._runs: list[np.ndarray] = []  # longest first
        self._maps: list[mmap.mmap | None] = []  # the file each run is mapped from, if any
        self._filter = np.zeros(1 << (_FILTER_BITS - 3), np.uint8)
        self._memory_pairs, self._folder = memory_pairs, folder
        self._closing = weakref.finalize(self, _release_all, self._runs, self._maps)

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
        runs, maps = self._runs, self._maps
        runs.append(run)
        maps.append(None)
        del run, packed
        merging, size = 1, len(runs[-1])  # the last runs that merge, all at once
        while merging < len(runs) and len(runs[-merging - 1]) < 2 * size:
            size += len(runs[-merging - 1])
            merging += 1
        if size > self._memory_pairs:  # to a file
            merged, to = self._write(_merged(runs[-merging:]))
            del runs[-merging:]
            for old in maps[-merging:]:
                _release(old)
            maps[-merging:] = [to]
            runs.append(merged)
        elif merging > 1:  # in memory
            merged = np.concatenate(runs[-merging:])
            del runs[-merging:], maps[-merging + 1 :]  # freed before the merge, in place
            merged.sort(kind="stable")  # of sorted runs: merges
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
        """Bytes held in memory: the filter and the runs not in files."""
        held = (run.nbytes for run, to in zip(self._runs, self._maps, strict=True) if to is None)
        return self._filter.nbytes + sum(held)

    @property
    def disk_bytes(self) -> int:
        """Bytes of the runs in files."""
        return sum(len(to) for to in self._maps if to is not None)

    def close(self) -> None:
        """Unmap and delete the index's files; it is empty afterwards."""
        self._closing()

    def _write(self, chunks: Iterable[np.ndarray]) -> tuple[np.ndarray, mmap.mmap]:
        """A run written chunk by chunk to a new temporary file, mapped from it, and the
        map (which keeps the file until it is closed)."""
        with tempfile.TemporaryFile(buffering=0, dir=self._folder) as file:
            size = sum(write_all(file.write, chunk) for chunk in chunks)
            to = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ)
        return np.frombuffer(to, np.uint64), to


def _merged(runs: list[np.ndarray], chunk: int = _MERGE_CHUNK) -> Iterator[np.ndarray]:
    """Sorted runs as one, a bounded chunk at a time: of the next ``chunk`` pairs of each
    (together), those up to the least of their last ones, sorted; then the rest of the
    last run left."""
    runs, chunk = list(runs), max(chunk // len(runs), 1)
    while len(runs) > 1:
        heads = [run[:chunk] for run in runs]
        pivot = min(head[-1] for head in heads)  # one head at least is taken whole
        taken = [head[: np.searchsorted(head, pivot, side="right")] for head in heads]
        runs = [run[len(head) :] for run, head in zip(runs, taken, strict=True)]
        runs = [run for run in runs if len(run)]
        merged = np.concatenate(taken)
        del heads, taken
        merged.sort(kind="stable")  # of sorted runs: merges
        yield merged
    for start in range(0, len(runs[0]) if runs else 0, chunk):
        yield runs[0][start : start + chunk]


def _release(to: mmap.mmap | None) -> None:
    """Unmap a run's file (and so delete it), unless an array still uses the map: it
    goes with the last such array."""
    if to is not None:
        with contextlib.suppress(BufferError):
            to.close()


def _release_all(runs: list[np.ndarray], maps: list[mmap.mmap | None]) -> None:
    runs.clear()
    for to in maps:
        _release(to)
    maps.clear()


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


class _Records:
    """Fixed-size records numbered from 0 in the order added: the latest ``block`` at most
    in memory, the others in a temporary file (unlinked at once), a block at a time."""

    def __init__(
        self, dtype: np.dtype | type, block: int = BLOCK, folder: str | None = None
    ) -> None:
        self._file = tempfile.TemporaryFile(buffering=0, dir=folder)  # noqa: SIM115
        self._fd = self._file.fileno()
        self._tail = np.zeros(block, dtype)
        self._size = self._tail.itemsize
        self.written = 0  # records in the file
        self.count = 0

    def extend(self, records: np.ndarray) -> None:
        done = 0
        while done < len(records):
            at = self.count - self.written
            n = min(len(self._tail) - at, len(records) - done)
            self._tail[at : at + n] = records[done : done + n]
            self.count, done = self.count + n, done + n
            if self.count - self.written == len(self._tail):
                write_all(self._file.write, self._tail)
                self.written = self.count

    def read(self, first: int, n: int) -> bytes:
        """The bytes of records ``first`` to ``first + n``."""
        if first < 0 or first + n > self.count:
            raise IndexError(f"records {first} to {first + n} of {self.count}")
        size, written = self._size, self.written
        if first + n <= written:
            return os.pread(self._fd, n * size, first * size)
        if first >= written:
            return self._tail[first - written : first - written + n].tobytes()
        on_disk = os.pread(self._fd, (written - first) * size, first * size)
        return on_disk + self._tail[: first + n - written].tobytes()

    def close(self) -> None:
        self._file.close()

    @property
    def nbytes(self) -> int:
        return self._tail.nbytes

    @property
    def disk_bytes(self) -> int:
        return self.written * self._size


_END, _ENDS = struct.Struct("<q"), struct.Struct("<2q")


class Spill:
    """Byte strings appended to a temporary file (unlinked at once, gone when closed) and
    read back by number, as is where each ends (8 bytes a string); memory holds those of
    the latest ``block`` strings."""

    def __init__(self, block: int = BLOCK, folder: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(buffering=0, dir=folder)  # noqa: SIM115
        self._ends = _Records(np.int64, block, folder)
        self._end = 0  # bytes in the file
        self._closing = weakref.finalize(self, _close_all, self._file, self._ends)

    def add(self, data: bytes | memoryview, ends: np.ndarray) -> None:
        """Strings in order: their bytes, one after another, and where each ends in them."""
        self._ends.extend(self._end + np.asarray(ends, np.int64))
        self._end += write_all(self._file.write, data)

    def get(self, number: int) -> bytes:
        if number:
            start, end = _ENDS.unpack(self._ends.read(number - 1, 2))
        else:
            start, (end,) = 0, _END.unpack(self._ends.read(0, 1))
        return os.pread(self._file.fileno(), end - start, start)

    def close(self) -> None:
        self._closing()

    @property
    def count(self) -> int:
        return self._ends.count

    @property
    def nbytes(self) -> int:
        return self._ends.nbytes

    @property
    def disk_bytes(self) -> int:
        return self._end + self._ends.disk_bytes


_WHERE = np.dtype([("file", "<u2"), ("start", "<i8"), ("length", "<u4")])  # packed
_WHERE_STRUCT = struct.Struct("<HqI")


class SketchStore:
    """The shingle-hash sketch of every indexed text, numbered from 0 in order: where it
    lies in a file, the store's own temporary file (unlinked at once) or one a worker wrote.
    Where is 14 bytes a text, in a file too; memory holds those of the latest ``block``."""

    def __init__(self, block: int = BLOCK, folder: str | None = None) -> None:
        self._own = tempfile.TemporaryFile(buffering=0, dir=folder)  # noqa: SIM115
        self._written = 0  # bytes in the store's own file
        self._fds, self._paths = [self._own.fileno()], {"": 0}
        self._where = _Records(_WHERE, block, folder)
        self._closing = weakref.finalize(self, _close_store, self._fds, self._own, self._where)

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
        where = np.empty(len(rows), _WHERE)
        where["file"] = file
        where["start"] = base + 4 * offsets[rows]
        where["length"] = offsets[rows + 1] - offsets[rows]
        self._where.extend(where)

    def get(self, number: int) -> np.ndarray:
        file, start, length = _WHERE_STRUCT.unpack(self._where.read(number, 1))
        return np.frombuffer(os.pread(self._fds[file], 4 * length, start), np.uint32)

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
    def count(self) -> int:
        return self._where.count

    @property
    def nbytes(self) -> int:
        return self._where.nbytes

    @property
    def disk_bytes(self) -> int:
        return self._written + self._where.disk_bytes


def _close_store(fds: list[int], own: IO[bytes], where: _Records) -> None:
    for fd in fds[1:]:
        os.close(fd)
    own.close()
    where.close()


def _close_all(*files: IO[bytes] | _Records) -> None:
    for file in files:
        file.close()


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
