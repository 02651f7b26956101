"""What near-duplicate detection remembers: LSH buckets and per-text shingle sketches.

Both live in numpy arrays rather than Python dicts and lists, so that a text costs 24 to
48 bytes per band (a half-full hash table of 12-byte slots) plus 4 bytes per kept shingle
hash, not a few hundred bytes of Python objects.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np


class BandIndex:
    """LSH buckets: (band key, text number) pairs in an open-addressing hash table.

    A key's home slot is its top bits; collisions probe forward (linear probing, no
    wrap-around: the table has spare slots past the last home, the last one always
    empty). A key is stored once per text in its bucket; a lookup probes from the home
    slot up to the next empty one. Keys are handled in sorted order, so the table is
    walked from start to end. At most half the homes are used: past that, the table is
    rebuilt twice as large in one vectorised pass.
    """

    def __init__(self, bits: int = 18) -> None:
        self._bits, self._count = bits, 0
        self._keys = np.zeros((1 << bits) + _SPARE, np.uint64)  # 0 marks an empty slot
        self._ids = np.zeros(len(self._keys), np.uint32)

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        keys = _nonzero(keys.ravel())
        order = np.argsort(keys)
        keys, ids = keys[order], ids.ravel()[order].astype(np.uint32)
        self._count += len(keys)
        if 2 * self._count <= 1 << self._bits:
            left = self._insert(keys, ids)
            keys, ids = keys[left], ids[left]
        if len(keys):
            used = self._keys != 0
            keys = np.concatenate([self._keys[used], keys])
            ids = np.concatenate([self._ids[used], ids])
            while 2 * self._count > 1 << self._bits:
                self._bits += 1
            self._build(keys, ids)

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return (keys >> np.uint64(64 - self._bits)).astype(np.int64)

    def _build(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Place every pair at once: sorted by home, each goes to its home or just after
        the one before it, whichever is later."""
        order = np.argsort(keys, kind="stable")  # nearly sorted already
        keys, ids = keys[order], ids[order]
        rank = np.arange(len(keys))
        slots = np.maximum.accumulate(self._home(keys) - rank) + rank
        size = max((1 << self._bits) + _SPARE, int(slots[-1]) + 2 if len(slots) else 0)
        self._keys, self._ids = np.zeros(size, np.uint64), np.zeros(size, np.uint32)
        self._keys[slots], self._ids[slots] = keys, ids

    def _insert(self, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Place new pairs, sorted by key, among the stored ones. Returns the indices of
        those that would have reached the last slot, left out."""
        slots, waiting, last = self._home(keys), np.arange(len(keys)), len(self._keys) - 1
        while len(waiting):
            # slots stay sorted: the first of equal slots wins it, if it is free
            here = slots[waiting]
            first = np.ones(len(waiting), bool)
            first[1:] = here[1:] != here[:-1]
            won = first & (self._keys[here] == 0)
            if here[won].max(initial=0) >= last:
                return waiting
            self._keys[here[won]], self._ids[here[won]] = keys[waiting[won]], ids[waiting[won]]
            waiting = waiting[~won]
            slots[waiting] += 1
        return waiting

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every stored pair whose key is asked for: the position of the key in ``keys``
        and the text number stored under it."""
        order = np.argsort(keys)
        keys = _nonzero(keys[order])
        slots, active = self._home(keys), np.arange(len(keys))
        positions, found = [np.zeros(0, np.int64)], [np.zeros(0, np.uint32)]
        while len(active):
            here = slots[active]
            stored = self._keys[here]
            match = stored == keys[active]
            positions.append(order[active[match]])
            found.append(self._ids[here[match]])
            active = active[stored != 0]
            slots[active] += 1
        return np.concatenate(positions), np.concatenate(found)

    @property
    def nbytes(self) -> int:
        return self._keys.nbytes + self._ids.nbytes


_SPARE = 1024


def _nonzero(keys: np.ndarray) -> np.ndarray:
    return np.where(keys == 0, np.uint64(1), keys)


class SketchStore:
    """The sorted shingle-hash sketch of every indexed text, numbered from 0 in order."""

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._hashes: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        self.count = 0

    def add(self, hashes: np.ndarray, offsets: np.ndarray) -> None:
        """Texts in order, as flat sorted hashes and their offsets."""
        self._firsts.append(self.count)
        self._hashes.append(hashes)
        self._offsets.append(offsets)
        self.count += len(offsets) - 1

    def get(self, number: int) -> np.ndarray:
        chunk = bisect_right(self._firsts, number) - 1
        offsets, at = self._offsets[chunk], number - self._firsts[chunk]
        return self._hashes[chunk][offsets[at] : offsets[at + 1]]

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes + o.nbytes for h, o in zip(self._hashes, self._offsets, strict=True))


def jaccard(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Jaccard similarity of two sketches of at most ``k`` sorted distinct hashes.

    Exact when both texts have fewer than ``k`` distinct shingles (the sketches are the
    whole sets); otherwise the bottom-k estimate: the share of the union's ``k`` smallest
    hashes that both sketches hold.
    """
    both = np.intersect1d(a, b, assume_unique=True)
    if len(a) < k and len(b) < k:
        return len(both) / (len(a) + len(b) - len(both))
    union = np.union1d(a, b)[:k]
    return int(np.count_nonzero(both <= union[-1])) / len(union)
