"""How varied a dataset is, measured in one streaming pass with bounded memory.

Whole-stream metrics (every text counts):

- **compression ratio**: raw bytes / gzip bytes of the texts in order; repetitive data
  compresses better, so a higher ratio means less diversity. gzip sees 32 KiB back, so it
  catches repeats among neighbouring records, which is where a collapsing generator puts them.
- **MATTR**: the type–token ratio averaged over a sliding window of ``window`` tokens
  (Covington & McFall, 2010), so that it does not fall just because there is more text.

Sample metrics, on a reservoir sample of ``sample`` texts drawn with a fixed seed, so
that two datasets of different sizes are compared on equal footing and reruns agree:

- **distinct-n** (n = 1, 2, 3): distinct n-grams / n-grams (Li et al., 2016).
- **self-BLEU**: each text's BLEU against all the others (``self_bleu``), 1 = all alike.
- **embedding dispersion**: mean pairwise cosine distance of all-MiniLM-L6-v2 sentence
  embeddings of ``embed_sample`` of the sampled texts, when ``datamill[semantic]`` and
  its model are installed; it costs 0.03–0.15 s a text on 2 cores.

**Coverage** counts the values of record fields and metadata (task, domain, language,
topic, persona) with their evenness, over every record (at most ``MAX_VALUES`` values a
field are kept; past that the field is marked capped).
"""

from __future__ import annotations

import json
import math
import random
import re
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field, JsonValue

from datamill.checks.base import Part, text_of
from datamill.quality.self_bleu import self_bleu
from datamill.records import Record

_TOKEN = re.compile(r"\w+|[^\w\s]")
FIELDS = ("task", "domain", "language", "topic", "persona")
MAX_VALUES = 10_000
MAX_SAMPLED_CHARS = 20_000  # a sampled text is cut here, so a few huge texts cannot blow memory


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...  # unit-length rows


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _TOKEN.findall(text.lower())


class Coverage(BaseModel):
    """How the values of one field spread over the records."""

    records: int = 0  # records that have the field
    distinct: int = 0
    capped: bool = False  # more than MAX_VALUES values: ``distinct`` is a lower bound
    evenness: float = 0.0  # Shannon entropy / log(distinct): 1 when all values are equally used
    effective: float = 0.0  # exp(entropy): how many equally used values it amounts to
    top: list[tuple[str, int]] = Field(default_factory=list)


class Profile(BaseModel):
    """A dataset's diversity figures; None where there was too little text to say."""

    part: str
    records: int = 0
    texts: int = 0  # records with non-empty text in ``part``
    tokens: int = 0
    sample: int = 0
    seed: int = 0
    distinct_1: float | None = None
    distinct_2: float | None = None
    distinct_3: float | None = None
    compression_ratio: float | None = None
    mattr: float | None = None
    mattr_window: int = 100
    self_bleu: float | None = None
    dispersion: float | None = None
    dispersion_sample: int = 0
    coverage: dict[str, Coverage] = Field(default_factory=dict)


def _value(raw: JsonValue) -> str | None:
    if raw is None or raw == "":
        return None
    return raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, ensure_ascii=False)


def distinct_n(texts: Iterable[Sequence[str]], n: int) -> float | None:
    seen: set[tuple[str, ...]] = set()
    total = 0
    for tokens in texts:
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else None


class Profiler:
    """Feed records (or texts) with :meth:`add`; :meth:`profile` gives the figures so far."""

    def __init__(
        self,
        part: Part = "response",
        sample: int = 1000,
        seed: int = 0,
        window: int = 100,
        embed_sample: int = 128,
        encoder: Encoder | None = None,
        fields: Sequence[str] = FIELDS,
    ) -> None:
        if sample < 2 or window < 1 or embed_sample < 0:
            raise ValueError("sample must be at least 2, window at least 1, embed_sample ≥ 0")
        self.part, self.sample_size, self.seed, self.window = part, sample, seed, window
        self.embed_sample, self.encoder, self.fields = embed_sample, encoder, tuple(fields)
        self.records = self.texts = self.tokens = 0
        self._rng = random.Random(seed)
        self._sample: list[str] = []
        self._raw_bytes = self._gzip_bytes = 0
        self._gzip = zlib.compressobj(9, zlib.DEFLATED, 31)
        self._window: deque[str] = deque()
        self._in_window: Counter[str] = Counter()
        self._ttr_sum, self._windows = 0.0, 0
        self._values: dict[str, Counter[str]] = {f: Counter() for f in self.fields}
        self._present: Counter[str] = Counter()
        self._capped: set[str] = set()

    @property
    def sampled(self) -> int:
        """Texts in the sample so far."""
        return len(self._sample)

    def add(self, record: Record) -> None:
        self.records += 1
        for name in self.fields:
            raw = getattr(record, name) if name in Record.model_fields else None
            value = _value(raw if raw is not None else record.metadata.get(name))
            if value is not None:
                self._count(name, value)
        self.add_text(text_of(record, self.part))

    def add_all(self, records: Iterable[Record]) -> Profiler:
        for record in records:
            self.add(record)
        return self

    def add_text(self, text: str) -> None:
        tokens = tokenize(text)
        if not tokens:
            return
        self.texts += 1
        self.tokens += len(tokens)
        raw = text.encode("utf-8", "replace") + b"\n"
        self._raw_bytes += len(raw)
        self._gzip_bytes += len(self._gzip.compress(raw))
        self._slide(tokens)
        kept = text[:MAX_SAMPLED_CHARS]
        if len(self._sample) < self.sample_size:
            self._sample.append(kept)
        else:  # reservoir sampling (Algorithm R): every text is kept with equal chance
            j = self._rng.randrange(self.texts)
            if j < self.sample_size:
                self._sample[j] = kept

    def _count(self, name: str, value: str) -> None:
        self._present[name] += 1
        values = self._values[name]
        if value in values or len(values) < MAX_VALUES:
            values[value] += 1
        else:
            self._capped.add(name)

    def _slide(self, tokens: list[str]) -> None:
        window, counts, size = self._window, self._in_window, self.window
        for token in tokens:
            window.append(token)
            counts[token] += 1
            if len(window) > size:
                old = window.popleft()
                counts[old] -= 1
                if not counts[old]:
                    del counts[old]
            if len(window) == size:
                self._ttr_sum += len(counts) / size
                self._windows += 1

    def _mattr(self) -> float | None:
        if self._windows:
            return self._ttr_sum / self._windows
        return len(self._in_window) / len(self._window) if self._window else None

    def _compression(self) -> float | None:
        if not self._raw_bytes:
            return None
        tail = self._gzip.copy().flush()  # the stream stays open for more texts
        return self._raw_bytes / (self._gzip_bytes + len(tail))

    def _dispersion(self, texts: list[str]) -> tuple[float | None, int]:
        if self.encoder is None or min(len(texts), self.embed_sample) < 2:
            return None, 0
        texts = random.Random(self.seed).sample(texts, min(len(texts), self.embed_sample))
        vectors = self.encoder.encode(texts)
        n = len(texts)
        total = vectors.sum(axis=0)
        mean_cosine = (float(total @ total) - n) / (n * (n - 1))
        return 1.0 - mean_cosine, n

    def _coverage(self) -> dict[str, Coverage]:
        out = {}
        for name, values in self._values.items():
            if not values:
                continue
            total = sum(values.values())
            entropy = -sum(c / total * math.log(c / total) for c in values.values())
            out[name] = Coverage(
                records=self._present[name],
                distinct=len(values),
                capped=name in self._capped,
                evenness=entropy / math.log(len(values)) if len(values) > 1 else 0.0,
                effective=math.exp(entropy),
                top=values.most_common(10),
            )
        return out

    def profile(self, limit: int | None = None) -> Profile:
        """The figures so far; with ``limit``, the sample metrics use a random ``limit`` of the
        sampled texts, to compare with a profile whose sample is that small."""
        texts = self._sample
        if limit is not None and limit < len(texts):
            texts = random.Random(self.seed).sample(texts, limit)
        sampled = [tokenize(text) for text in texts]
        dispersion, embedded = self._dispersion(texts)
        return Profile(
            part=self.part,
            records=self.records,
            texts=self.texts,
            tokens=self.tokens,
            sample=len(sampled),
            seed=self.seed,
            distinct_1=distinct_n(sampled, 1),
            distinct_2=distinct_n(sampled, 2),
            distinct_3=distinct_n(sampled, 3),
            compression_ratio=self._compression(),
            mattr=self._mattr(),
            mattr_window=self.window,
            self_bleu=self_bleu(sampled),
            dispersion=dispersion,
            dispersion_sample=embedded,
            coverage=self._coverage(),
        )


def default_encoder() -> Encoder | None:
    """The MiniLM sentence encoder when it is installed, else None (no dispersion)."""
    from datamill.embeddings import SentenceEncoder
    from datamill.errors import DatamillError

    try:
        return SentenceEncoder()
    except DatamillError:
        return None


def profile_records(records: Iterable[Record], **options: object) -> Profile:
    """The diversity profile of a stream of records (options as for :class:`Profiler`)."""
    return Profiler(**options).add_all(records).profile()  # type: ignore[arg-type]
