"""Near-duplicates by MinHash LSH over word n-grams: the first occurrence passes, a later
text whose n-gram set overlaps an earlier one's by ``threshold`` (Jaccard) or more fails.

Records stream through: texts are shingled and hashed in worker processes, a chunk at a
time, a few chunks ahead of the one being judged, so that no batch boundary leaves the
workers idle (see :mod:`datamill.checks.shingles` and :mod:`datamill.checks.workers`).
:meth:`NearDup.scan` does the same for plain ``(id, text)`` pairs. The parent keeps the
LSH buckets and verifies every LSH candidate on shingle sketches, so a bucket collision
alone never fails a record. Only texts that pass are indexed: a duplicate is reported
against a text that was kept. With ``reference``, another dataset's texts are indexed
first and any match against them fails too.

Workers write each chunk's sketches to files of their own and send back only band keys
and sizes; the parent reads a sketch back only to verify a candidate.

Memory stays flat however many texts are kept. The LSH index holds a fixed 8 MB filter of
its keys and, in memory, only its shorter sorted runs of (band key, text number) pairs,
under 4 MB in all; longer runs, 8 bytes per band a kept text (128 bytes with the default
16 bands), are in temporary files mapped read-only, page cache the kernel can drop. Where
each text's sketch lies and where its id ends go to temporary files a block at a time, as
do the sketches (4 bytes per shingle, up to ``sketch``) and the ids' bytes; see
:mod:`datamill.checks.lsh`. ``benchmarks/dedup.py`` measures speed, memory, precision and
recall against datasketch and rensa.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from operator import attrgetter, itemgetter
from typing import TypeVar, get_args

import numpy as np

from datamill.checks.base import BatchCheck, Part, text_of
from datamill.checks.lsh import BandIndex, SketchStore, Spill, jaccard
from datamill.checks.registry import register
from datamill.checks.shingles import Shingling, Sketched
from datamill.checks.workers import SketchPool, chunked
from datamill.records import CheckResult, Record
from datamill.store import Dataset

MAX_CANDIDATES = 64  # verified per text, those sharing the most bands first
MAX_WORKERS = 4

T = TypeVar("T")


def check_part(on: str) -> Part:
    if on not in get_args(Part):
        raise ValueError(f"on must be one of {', '.join(get_args(Part))}, not {on!r}")
    return on  # type: ignore[return-value]


def reference_batches(path: str, on: Part, size: int) -> Iterator[tuple[list[str], list[str]]]:
    """The ids and texts of a dataset's latest version, a batch at a time."""
    for batch in Dataset.open(path).batches(batch_size=size):
        yield [r.id for r in batch], [text_of(r, on) for r in batch]


@register
class NearDup(BatchCheck):
    name = "near_dup"
    batch_size = 4096

    def __init__(
        self,
        on: Part = "conversation",
        threshold: float = 0.8,
        ngram: int = 5,
        num_perm: int = 128,
        bands: int = 16,
        rows: int = 8,
        sketch: int = 512,
        reference: str | None = None,
        workers: int = 0,
    ) -> None:
        """``threshold``: Jaccard similarity of word ``ngram`` sets at or above which a
        text is a near-duplicate. ``num_perm``, ``bands`` and ``rows``: the MinHash
        signature and its LSH banding (a pair at similarity s is a candidate with
        probability 1 - (1 - s**rows)**bands: 0.95 at 0.8 for 16 x 8). ``sketch``: shingle
        hashes kept per text for verification; exact below that many distinct n-grams, a
        bottom-k estimate above. ``reference``: a dataset directory whose latest version
        is indexed first. ``workers``: processes that hash texts, this one included (0: one
        per core, at most MAX_WORKERS, as many as one process judging keeps busy; 1: this
        one alone); the others start with the second chunk of a stream, and this one
        hashes while they do, and whenever it would otherwise wait for them."""
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        if num_perm < 2 or num_perm & (num_perm - 1):
            raise ValueError(f"num_perm must be a power of two, not {num_perm}")
        if min(ngram, bands, rows, sketch) < 1 or bands * rows > num_perm:
            raise ValueError(
                "ngram, num_perm, bands, rows and sketch must be positive, "
                f"and bands x rows ({bands} x {rows}) at most num_perm ({num_perm})"
            )
        if reference is not None:
            Dataset.open(reference).version()  # a missing or empty dataset fails now
        self.on, self.threshold, self.reference = check_part(on), threshold, reference
        self.how = Shingling(ngram, num_perm, bands, rows, sketch)
        self.workers = workers or min(os.cpu_count() or 1, MAX_WORKERS)
        self._index, self._sketches, self._ids = BandIndex(), SketchStore(), Spill()
        self._in_reference = 0  # indexed texts numbered below this are the reference's
        self._reference_pending = reference is not None
        self.hashing = SketchPool(self.how, self.workers, MAX_CANDIDATES)

    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]:
        return [result async for _, results in self._verdicts(records) for result in results]

    async def run(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        """The records with their verdicts, streaming: no batch boundary stalls the workers."""
        async for chunk, results in self._verdicts(records):
            for record, result in zip(chunk, results, strict=True):
                yield record.with_check(self.name, result)

    async def scan(
        self, items: Iterable[tuple[str, str]] | AsyncIterable[tuple[str, str]]
    ) -> AsyncIterator[list[CheckResult]]:
        """Verdicts on plain ``(id, text)`` pairs, in order, a list per chunk of them."""
        async for _, results in self._verdicts(items, text=itemgetter(1), key=itemgetter(0)):
            yield results

    async def aclose(self) -> None:
        self.hashing.close()

    async def _verdicts(
        self,
        items: Iterable[T] | AsyncIterable[T],
        text: Callable[[T], str] | None = None,
        key: Callable[[T], str] = attrgetter("id"),
    ) -> AsyncIterator[tuple[list[T], list[CheckResult]]]:
        """Items (records, unless ``text`` and ``key`` say how to read them) and their
        verdicts, a chunk at a time, in order."""
        if self._reference_pending:
            self._reference_pending = False
            pairs = self._reference_items()
            async for group, sketched in self._sketched(pairs, itemgetter(1)):
                keep = np.flatnonzero(sketched.sizes)
                self._add(sketched, keep, [group[i][0] for i in keep.tolist()])
            self._in_reference = self._ids.count
        async for group, sketched in self._sketched(items, text or self._text):
            yield group, self._judge(list(map(key, group)), sketched)

    async def _sketched(
        self, items: Iterable[T] | AsyncIterable[T], text: Callable[[T], str]
    ) -> AsyncIterator[tuple[list[T], Sketched]]:
        """Chunks of items with their sketches, in order; the chunks after the one given
        are hashed meanwhile."""
        waiting: deque[list[T]] = deque()

        async def texts() -> AsyncIterator[list[str]]:
            async for group, chunk_texts in chunked(items, text):
                waiting.append(group)
                yield chunk_texts

        async for sketched in self.hashing.stream(texts()):
            yield waiting.popleft(), sketched

    def _text(self, record: Record) -> str:
        return text_of(record, self.on)

    def _reference_items(self) -> Iterator[tuple[str, str]]:
        assert self.reference is not None
        for ids, texts in reference_batches(self.reference, self.on, self.batch_size):
            yield from zip(ids, texts, strict=True)

    def _judge(self, ids: list[str], sketched: Sketched) -> list[CheckResult]:
        """Verdicts for one chunk, in order, against the index and the chunk's earlier
        kept texts; the kept ones are indexed afterwards."""
        indexed, local = self._candidates(sketched), _within(sketched.pairs)
        offsets, k = sketched.offsets.tolist(), self.how.sketch
        kept = (sketched.sizes > 0).tolist()

        hashes = sketched.hashes

        def own(i: int) -> np.ndarray:
            nonlocal hashes
            if sketched.spilled is not None and not len(hashes):  # read at once, if needed
                hashes = self._sketches.fetch(sketched.spilled, 0, offsets[-1])
            return hashes[offsets[i] : offsets[i + 1]]

        scores: dict[int, float] = {}
        failed: dict[int, CheckResult] = {}
        for i in sorted(indexed.keys() | local.keys()):
            if not kept[i]:  # no words
                continue
            sim, of, in_reference = 0.0, "", False
            best = -1  # the number of the indexed text most like this one
            for number in indexed.get(i, ()):
                s = jaccard(own(i), self._sketches.get(number), k)
                if s > sim:
                    sim, best = s, number
            for j in local.get(i, ()):
                if not kept[j]:
                    continue
                s = jaccard(own(i), own(j), k)
                if s > sim:
                    sim, best, of = s, -1, ids[j]
            scores[i] = round(sim, 4)
            if sim >= self.threshold:
                if best >= 0:
                    of = self._ids.get(best).decode(errors="surrogatepass")
                    in_reference = best < self._in_reference
                kept[i] = False
                details = {"duplicate_of": of, "similarity": scores[i]}
                details["in_reference"] = in_reference
                failed[i] = CheckResult(score=scores[i], passed=False, details=details)
        rows = np.flatnonzero(kept)
        self._add(sketched, rows, [ids[i] for i in rows.tolist()])
        # results are values: one stands for every text of the chunk that met no candidate
        clear = CheckResult(score=0.0, passed=True)
        wordless = CheckResult(passed=True, details={"reason": "no words"})
        results = [clear if size else wordless for size in sketched.sizes.tolist()]
        for i, score in scores.items():
            results[i] = failed.get(i) or CheckResult(score=score, passed=True)
        return results

    def _candidates(self, sketched: Sketched) -> dict[int, list[int]]:
        """Indexed texts sharing a band with each text of the chunk, those sharing most
        bands first, at most MAX_CANDIDATES each."""
        keys = sketched.keys
        asked, found = self._index.lookup(keys.ravel(), sketched.order)
        if not len(asked):
            return {}
        pairs = np.sort((asked // keys.shape[1]).astype(np.uint64) << np.uint64(32) | found)
        edge = np.flatnonzero(np.concatenate([[True], pairs[1:] != pairs[:-1], [True]]))
        unique, shared = pairs[edge[:-1]], np.diff(edge)
        order = np.lexsort((-shared, unique >> np.uint64(32)))
        out: dict[int, list[int]] = {}
        for pair in unique[order].tolist():
            numbers = out.setdefault(pair >> 32, [])
            if len(numbers) < MAX_CANDIDATES:
                numbers.append(pair & 0xFFFFFFFF)
        return out

    def _add(self, sketched: Sketched, rows: np.ndarray, ids: list[str]) -> None:
        """Index the given rows of a chunk's sketches under the next text numbers."""
        if not len(rows):
            return
        first = self._ids.count
        numbers = np.arange(first, first + len(rows), dtype=np.uint32)
        bands = sketched.keys.shape[1]
        if len(rows) == len(sketched.sizes):
            order = sketched.order
        else:  # the order of the rows' keys among themselves
            kept = np.zeros(len(sketched.sizes), bool)
            kept[rows] = True
            flat = np.repeat(kept, bands)
            order = (np.cumsum(flat) - 1)[sketched.order[flat[sketched.order]]]
        self._index.add(sketched.keys[rows], np.repeat(numbers, bands), order)
        self._sketches.add(sketched.hashes, sketched.offsets, rows, sketched.spilled)
        joined = "".join(ids)
        if joined.isascii():  # as many bytes as characters
            lengths = np.fromiter(map(len, ids), np.int64, len(ids))
            self._ids.add(joined.encode(), np.cumsum(lengths))
        else:
            encoded = [i.encode(errors="surrogatepass") for i in ids]  # any str
            lengths = np.fromiter(map(len, encoded), np.int64, len(ids))
            self._ids.add(b"".join(encoded), np.cumsum(lengths))


def _within(pairs: np.ndarray) -> dict[int, list[int]]:
    """For each text of a chunk, the earlier texts of the chunk that share a band key."""
    out: dict[int, list[int]] = {}
    for earlier, later in pairs.tolist():
        out.setdefault(later, []).append(earlier)
    return out
