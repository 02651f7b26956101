"""Per-batch work for near-duplicate detection that does not need the index, done where
the hashing is (in worker processes): each text's shingle set sorted, and the pairs of
texts of the batch that share an LSH band key.

Sorting many small sets one by one costs a Python call each, and one flat sort of the
whole batch is slow; texts are instead laid out as the rows of a rectangle, sorted along
its rows in one call.
"""

from __future__ import annotations

import numpy as np

_PAD = np.uint32(0xFFFFFFFF)  # sorts last; a real hash equal to it is kept all the same
_WIDEST = 1 << 12  # texts with more shingles than this are sorted one by one


def sorted_sets(values: np.ndarray, counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each text's distinct values, sorted, at most its ``k`` smallest.

    ``values`` holds each text's values one text after another, ``counts`` how many each
    has. Returns the sets the same way, and how many distinct values each text has in all.
    """
    ends = np.cumsum(counts)
    starts = ends - counts
    out = values.copy()  # to be sorted, each text in its place
    wide = counts > _WIDEST
    for t in np.flatnonzero(wide).tolist():
        out[starts[t] : ends[t]].sort()
    narrow = np.where(wide, 0, counts)
    if narrow.any():
        width = int(narrow.max())
        at = np.arange(len(values)) + np.repeat(np.arange(len(counts)) * width - starts, counts)
        inside = np.repeat(~wide, counts) if wide.any() else slice(None)  # narrow texts
        at = at[inside]
        rect = np.full(len(counts) * width, _PAD, np.uint32)
        rect[at] = values[inside]
        rect.reshape(len(counts), width).sort(axis=1)
        out[inside] = rect[at]
    new = np.ones(len(out), bool)  # the first of equal values within a text
    new[1:] = out[1:] != out[:-1]
    new[starts[counts > 0]] = True
    seen = np.concatenate([[0], np.cumsum(new)])  # distinct values up to each position
    sizes = seen[ends] - seen[starts]
    if sizes.max(initial=0) > k:  # keep each text's k smallest
        new &= seen[1:] - 1 - np.repeat(seen[starts], counts) < k  # rank among its own
    return out[new], sizes


def shared_pairs(keys: np.ndarray, sizes: np.ndarray, order: np.ndarray, limit: int) -> np.ndarray:
    """Pairs (earlier, later) of texts of a batch with words that share a band key, each
    later text paired with at most the ``limit`` first texts of a bucket; one row a pair,
    sorted by the later text, each pair once. ``keys`` has one row per text, ``order``
    sorts them flattened, stably (equal keys stay in text order)."""
    flat = keys.ravel()
    texts = order // keys.shape[1]
    ordered = flat[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not len(same):
        return np.zeros((0, 2), np.int64)
    run_start = np.ones(len(same), bool)
    run_start[1:] = same[1:] != same[:-1] + 1
    firsts = same[run_start]
    lasts = np.append(same[np.flatnonzero(run_start)[1:] - 1], same[-1]) + 1
    pairs = []
    for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        members = texts[first : last + 1]
        members = members[sizes[members] > 0]  # texts without words share every key
        m = len(members)
        if m < 2:
            continue
        later = np.arange(1, m)
        count = np.minimum(later, limit)
        ends = np.cumsum(count)
        earlier = np.arange(ends[-1]) - np.repeat(ends - count, count)
        pairs.append(np.stack([members[earlier], members[np.repeat(later, count)]], axis=1))
    if not pairs:
        return np.zeros((0, 2), np.int64)
    both = np.concatenate(pairs)
    code = np.unique(both[:, 1] * len(sizes) + both[:, 0])  # by the later text, then earlier
    return np.stack([code % len(sizes), code // len(sizes)], axis=1)
