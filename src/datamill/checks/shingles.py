"""Word n-gram shingles of many texts at once, hashed in bulk, and their MinHash sketches.

Tokenising is the slow part of near-duplicate detection in Python, so nothing here makes a
Python object per word: a batch of texts becomes one byte buffer, words are runs of bytes
between separators, and each word's hash is made from its bytes, read 8 at a time, by a
cheap bijection. A shingle's hash sums its words' hashes times an odd constant per
position; multiplication carries every bit upward, so the top 32 bits, all that is used,
depend on every word. Shingle hashes make MinHash signatures for the LSH band keys (a
scatter-minimum, no sort), and the smallest ``sketch`` of each text's distinct shingle
hashes are kept so that candidates can be verified on real shingles.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from datamill.checks.sketches import shared_pairs, sorted_sets

U64 = np.uint64
# ASCII letters lower-cased, every other ASCII byte (punctuation, controls, spaces) a
# separator, 0; bytes of multi-byte UTF-8 characters are word bytes.
_TABLE = bytes(
    (c | 0x20 if 65 <= c <= 90 else c) if c >= 128 or chr(c).isalnum() else 0 for c in range(256)
)
_P = U64(0x100000001B3 * 2 + 1)


def _fmix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (every input bit affects every output bit), in place."""
    h ^= h >> U64(33)
    h *= U64(0xFF51AFD7ED558CCD)
    h ^= h >> U64(33)
    h *= U64(0xC4CEB9FE1A85EC53)
    h ^= h >> U64(33)
    return h


def _scramble(h: np.ndarray) -> np.ndarray:
    """A cheap bijection of 64-bit values (a multiply by an odd number, then a xor-shift),
    in place: distinct words keep distinct hashes, with their bits spread over all 64."""
    h *= U64(0x9E3779B97F4A7C15)
    h ^= h >> U64(32)
    return h


@functools.cache
def _non_word() -> re.Pattern[str]:
    # Python's \w leaves out combining marks (Devanagari vowel signs, Arabic harakat...);
    # a word goes on through them.
    planes = [*range(0x20000), *range(0xE0000, 0xE0200)]
    marks = [c for c in planes if unicodedata.category(chr(c)).startswith("M")]
    runs, start = [], marks[0]
    for prev, cur in zip(marks, [*marks[1:], -1], strict=True):
        if cur != prev + 1:
            runs.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
            start = cur
    return re.compile(f"(?:[^\\w{''.join(runs)}]|_)+")


def normalise(text: str) -> str:
    """Case, width, punctuation, symbols, controls and format characters do not count.

    Only non-ASCII texts take this path; the byte table does the same to ASCII ones.
    """
    return _non_word().sub(" ", unicodedata.normalize("NFKC", text).casefold())


_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], U64)


def word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit hash of every word of every text, and the index of its text.

    A word is read 8 bytes at a time, straight from the buffer (an overlapping view:
    element i is the 8 bytes from byte i), each piece cut at the word's end; most words
    take one or two pieces, so the work is per word, not per byte.
    """
    joined = "\0".join(texts)
    if joined.isascii():  # most batches: one encode for all
        data = ("\0" + joined + "\0" * 9).encode().translate(_TABLE)
        sizes = np.fromiter(map(len, texts), np.int64, len(texts))
    else:
        parts = [(t if t.isascii() else normalise(t)).encode() for t in texts]
        data = b"\0" + b"\0".join(parts).translate(_TABLE) + b"\0" * 9
        sizes = np.fromiter(map(len, parts), np.int64, len(parts))
    buf = np.frombuffer(data, np.uint8)
    inside = buf != 0
    edges = np.flatnonzero(inside[1:] != inside[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    pieces = np.ndarray((len(buf) - 7,), "<u8", data, strides=(1,))
    lengths = ends - starts
    acc = _scramble(pieces[starts] & _LOW_BYTES[np.minimum(lengths, 8)])
    long, offset = np.flatnonzero(lengths > 8), 8
    while len(long):
        left = np.minimum(lengths[long] - offset, 8)
        acc[long] = _scramble(acc[long] * _P + (pieces[starts[long] + offset] & _LOW_BYTES[left]))
        offset += 8
        long = long[lengths[long] > offset]
    first_words = np.searchsorted(starts, np.cumsum(sizes + 1) - sizes)
    counts = np.diff(np.append(first_words, len(starts)))
    return acc, np.repeat(np.arange(len(texts)), counts)


def shingle_hashes(
    hashes: np.ndarray, owner: np.ndarray, n_texts: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the word n-grams of each text, or of all its words if it has fewer than
    ``n``, in text order, and the index of the text of each."""
    mixes = [U64(0x9E3779B97F4A7C15 * (2 * t + 1) % 2**64) for t in range(n)]
    windows = max(len(hashes) - n + 1, 0)
    acc = np.zeros(windows, U64)
    for t, mix in enumerate(mixes):
        acc += hashes[t : t + windows] * mix
    whole = owner[n - 1 :] == owner[:windows]  # the n words are all of one text
    acc, owners = acc[whole], owner[:windows][whole]
    counts = np.bincount(owner, minlength=n_texts)
    short = np.flatnonzero((counts > 0) & (counts < n))
    if len(short):
        first = (np.cumsum(counts) - counts)[short]
        acc_short = np.zeros(len(short), U64)
        for t, mix in enumerate(mixes[:-1]):
            ok = t < counts[short]
            acc_short += np.where(ok, hashes[np.where(ok, first + t, 0)], U64(0)) * mix
        at = np.searchsorted(owners, short)
        acc, owners = np.insert(acc, at, acc_short), np.insert(owners, at, short)
    return acc, owners


@dataclass(frozen=True)
class Shingling:
    """How texts become shingles, MinHash signatures and LSH band keys."""

    ngram: int = 5
    num_perm: int = 128
    bands: int = 16
    rows: int = 8
    sketch: int = 512


class Sketched(NamedTuple):
    """One batch of texts: LSH band keys (one row per text), how many distinct shingles
    each text has, the smallest ``sketch`` of their 32-bit hashes, sorted (``offsets``: where
    each text's hashes begin), the order that sorts the band keys (flattened), and the
    pairs of texts of the batch that share a band key (see :func:`shared_pairs`). A worker
    writes the hashes to a file instead of sending them: ``spilled`` is then the file and
    where in it they begin, ``hashes`` is empty, and keys come as their top 32 bits."""

    keys: np.ndarray
    sizes: np.ndarray
    hashes: np.ndarray
    offsets: np.ndarray
    order: np.ndarray
    pairs: np.ndarray
    spilled: tuple[str, int] | None = None


_EMPTY = np.uint32(0xFFFFFFFF)
ORDER_BITS = 16  # the low bits of a band key: 0, for its position in a sort


_PROBES = 16  # hashed probes for an empty bin before it takes the next non-empty one


@functools.lru_cache(maxsize=4)
def _probe_table(k: int) -> np.ndarray:
    """The bins that each empty bin borrows from, in order: fixed, whatever the text."""
    attempts = np.arange(_PROBES, dtype=U64)
    h = _fmix(np.arange(k, dtype=U64)[:, None] * U64(0x9E3779B97F4A7C15) + attempts)
    return (h >> U64(65 - k.bit_length())).astype(np.int64)


def signatures(hashes: np.ndarray, owner: np.ndarray, n: int, k: int) -> np.ndarray:
    """MinHash signatures by one-permutation hashing with densification.

    ``hashes`` are 32-bit shingle hashes and ``owner`` the text of each. A hash's top bits
    pick one of ``k`` (a power of two) bins and the smallest hash in a bin is its value, so
    a text costs one hash per shingle instead of ``k``. An empty bin borrows the value of
    the first non-empty bin in a fixed order: 16 hashed probes (optimal densification,
    Shrivastava, ICML 2017), then the bins to its right. The order is the same for every
    text, so two texts agree in a bin with probability equal to their Jaccard similarity.
    Texts without shingles keep empty rows.
    """
    cell = owner * k + (hashes >> np.uint32(33 - k.bit_length())).astype(np.int64)
    raw = np.full(n * k, _EMPTY, np.uint32)
    np.minimum.at(raw, cell, hashes)
    raw = raw.reshape(n, k)
    dense = raw.copy()
    flat, out = raw.ravel(), dense.ravel()  # views
    empty = np.flatnonzero((raw == _EMPTY) & (raw != _EMPTY).any(axis=1, keepdims=True))
    bins, table = empty & (k - 1), _probe_table(k)
    for attempt in range(_PROBES):
        found = flat[empty - bins + table[bins, attempt]]
        hit = found != _EMPTY
        out[empty[hit]] = found[hit]
        empty, bins = empty[~hit], bins[~hit]
        if not len(empty):
            break
    texts = empty >> (k.bit_length() - 1)
    if len(texts):  # sparse texts: the next non-empty bin to the right, wrapping around
        new_row = np.ones(len(texts), bool)
        new_row[1:] = texts[1:] != texts[:-1]  # texts come sorted
        rows = texts[new_row]
        filled = np.tile(raw[rows] != _EMPTY, 2)
        nearest = np.where(filled, np.arange(2 * k), 2 * k)
        nearest = np.minimum.accumulate(nearest[:, ::-1], axis=1)[:, ::-1]
        source = nearest[np.cumsum(new_row) - 1, bins] % k
        dense[texts, bins] = raw[texts, source]
    return dense


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band; the band's number is part of the key, and the low
    ORDER_BITS are 0 (see :func:`key_order`).

    A band's values are summed with odd multipliers, then mixed once: equal bands give
    equal keys; unequal bands that collide (rarely) only make a candidate that fails
    verification.
    """
    n, width = len(signatures), bands * rows
    if rows % 2 == 0:  # two values a word
        words = np.ascontiguousarray(signatures[:, :width]).view(U64)
        grouped = words.reshape(n, bands, rows // 2)
    else:
        grouped = signatures[:, :width].reshape(n, bands, rows).astype(U64)
    acc = np.broadcast_to(np.arange(bands, dtype=U64) * U64(0xD6E8FEB86659FD93), (n, bands))
    for r in range(grouped.shape[2]):
        acc = acc + grouped[:, :, r] * U64(0x9E3779B97F4A7C15 * (2 * r + 1) % 2**64)
    return _fmix(acc) & ~U64((1 << ORDER_BITS) - 1)


def key_order(keys: np.ndarray) -> np.ndarray:
    """The order that sorts the flattened keys, earlier texts first among equal keys.

    Keys leave their low ORDER_BITS to this: a key with its position there sorts as the
    key, ties broken by position, in one plain sort (a stable argsort is slower)."""
    flat = keys.ravel()
    if len(flat) > 1 << ORDER_BITS:
        return np.argsort(flat, kind="stable")
    packed = np.sort(flat | np.arange(len(flat), dtype=U64))
    return (packed & U64((1 << ORDER_BITS) - 1)).astype(np.int64)


def sketch_texts(texts: list[str], how: Shingling, pairs_per_bucket: int = 64) -> Sketched:
    """Everything about a batch that does not need the index: a pure function, run in
    workers. A text is paired with at most ``pairs_per_bucket`` earlier texts of a bucket."""
    n = len(texts)
    shingles, owner = shingle_hashes(*word_hashes(texts), n, how.ngram)
    values = (shingles >> U64(32)).astype(np.uint32)
    keys = band_keys(signatures(values, owner, n, how.num_perm), how.bands, how.rows)
    hashes, sizes = sorted_sets(values, np.bincount(owner, minlength=n), how.sketch)
    order = key_order(keys)
    pairs = shared_pairs(keys, sizes, order, pairs_per_bucket)
    offsets = np.concatenate([[0], np.cumsum(np.minimum(sizes, how.sketch))])
    return Sketched(keys, sizes, hashes, offsets, order, pairs)
