"""Inter-annotator agreement and annotator quality.

Answers to one question are kept as compact ``(item, annotator, value)`` triples in an
:class:`AnswerTable` (numpy arrays, not records), so agreement over a large dataset costs a
few bytes per answer. The statistics come from the libraries the field uses and are tested
against them: Krippendorff's alpha from ``krippendorff`` (any level, missing answers
allowed), Cohen's kappa from scikit-learn. Fleiss' kappa is the usual formula, written
here so that items may have different numbers of raters (statsmodels assumes the same
number everywhere; with equal numbers the two agree).
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval"]


@dataclass
class AnswerTable:
    """The answers to one question: item numbers, annotator numbers and values.

    Nominal values are stored as codes into ``categories``; ordinal and interval values as
    floats. Annotator names are shared between tables through ``annotators``.
    """

    level: Level
    annotators: list[str] = field(default_factory=list)
    categories: list[Hashable] = field(default_factory=list)
    _items: array = field(default_factory=lambda: array("q"))
    _raters: array = field(default_factory=lambda: array("i"))
    _values: array = field(default_factory=lambda: array("d"))
    _rater_index: dict[str, int] = field(default_factory=dict)
    _codes: dict[Hashable, int] = field(default_factory=dict)

    def add(self, item: int, annotator: str, value: Hashable | float) -> None:
        rater = self._rater_index.get(annotator)
        if rater is None:
            rater = self._rater_index[annotator] = len(self.annotators)
            self.annotators.append(annotator)
        self._items.append(item)
        self._raters.append(rater)
        self._values.append(self.encode(value))

    def encode(self, value: Hashable | float) -> float:
        """A value in the table's terms: a category's code, or the number itself."""
        if self.level != "nominal":
            return float(value)  # type: ignore[arg-type]
        code = self._codes.get(value)
        if code is None:
            code = self._codes[value] = len(self.categories)
            self.categories.append(value)
        return float(code)

    def __len__(self) -> int:
        return len(self._items)

    # Copies, not views: a live view would stop the arrays from growing.
    @property
    def items(self) -> np.ndarray:
        return np.array(self._items, dtype=np.int64)

    @property
    def raters(self) -> np.ndarray:
        return np.array(self._raters, dtype=np.int32)

    @property
    def values(self) -> np.ndarray:
        return np.array(self._values, dtype=np.float64)

    def value_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item ids, value domain, counts[item, value]): how many raters gave each value."""
        items, item_idx = np.unique(self.items, return_inverse=True)
        domain, value_idx = np.unique(self.values, return_inverse=True)
        counts = np.zeros((len(items), len(domain)), dtype=np.int64)
        np.add.at(counts, (item_idx, value_idx), 1)
        return items, domain, counts

    def label(self, value: float) -> Hashable | float:
        """A stored value as the annotator gave it."""
        return self.categories[int(value)] if self.level == "nominal" else value


def krippendorff_alpha(table: AnswerTable, level: Level | None = None) -> float | None:
    """Krippendorff's alpha; None when it is undefined (fewer than two distinct values, or
    no item with two answers)."""
    import krippendorff

    _, domain, counts = table.value_counts()
    counts = counts[counts.sum(axis=1) >= 2]
    if len(domain) < 2 or not len(counts) or len(np.flatnonzero(counts.sum(axis=0))) < 2:
        return None
    alpha = krippendorff.alpha(
        value_counts=counts, value_domain=domain, level_of_measurement=level or table.level
    )
    return None if np.isnan(alpha) else float(alpha)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from counts[item, category]; items may have different numbers of
    raters (items with fewer than two are left out). None when undefined."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=1)
    counts, n = counts[n >= 2], n[n >= 2]
    if not len(counts):
        return None
    p_item = ((counts * counts).sum(axis=1) - n) / (n * (n - 1))
    p_cat = counts.sum(axis=0) / n.sum()
    expected = float((p_cat * p_cat).sum())
    if expected >= 1.0:
        return None
    return (float(p_item.mean()) - expected) / (1.0 - expected)


def table_fleiss_kappa(table: AnswerTable) -> float | None:
    return fleiss_kappa(table.value_counts()[2]) if table.level == "nominal" else None


def cohen_kappa(
    a: list[Hashable | None],
    b: list[Hashable | None],
    weights: Literal["linear", "quadratic"] | None = None,
) -> float | None:
    """Cohen's kappa of two raters over the items both answered (None marks a missing
    answer); weighted kappa for ordinal answers. None when undefined."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if len(pairs) < 2:
        return None
    left, right = zip(*pairs, strict=True)
    return _cohen(np.asarray(left), np.asarray(right), weights)


def _cohen(
    left: np.ndarray, right: np.ndarray, weights: Literal["linear", "quadratic"] | None
) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    labels = np.union1d(left, right)  # sorted: weighted kappa needs the labels' order
    if len(labels) < 2:
        return None
    kappa = cohen_kappa_score(left, right, labels=labels, weights=weights)
    return None if np.isnan(kappa) else float(kappa)


def mean_pairwise_cohen(table: AnswerTable, min_common: int = 5) -> float | None:
    """Cohen's kappa averaged over every pair of annotators with ``min_common`` items in
    common (the usual summary when there are more than two raters). Memory grows with the
    answers, not with annotators × items."""
    items, raters, values = table.items, table.raters, table.values
    mine = [np.flatnonzero(raters == r) for r in range(len(table.annotators))]
    weights = None if table.level == "nominal" else "quadratic"
    kappas = []
    for a, b in itertools.combinations(mine, 2):
        _, ia, ib = np.intersect1d(items[a], items[b], return_indices=True)
        if len(ia) >= min_common:
            k = _cohen(values[a][ia], values[b][ib], weights)
            if k is not None:
                kappas.append(k)
    return float(np.mean(kappas)) if kappas else None


def kendall_w(ranks: np.ndarray) -> float | None:
    """Kendall's coefficient of concordance of ranks[rater, object] (complete rankings,
    no ties): 1 when every rater orders the objects alike, 0 when they are unrelated."""
    m, n = ranks.shape
    if m < 2 or n < 2:
        return None
    totals = ranks.sum(axis=0)
    s = float(((totals - totals.mean()) ** 2).sum())
    return 12.0 * s / (m * m * (n**3 - n))


@dataclass
class AnnotatorQuality:
    annotator: str
    answers: int
    agreement: float | None  # with the consensus, on items someone else answered too
    gold_items: int = 0
    gold_accuracy: float | None = None
    flagged: bool = False
    reason: str = ""


def annotator_quality(
    table: AnswerTable,
    consensus: Mapping[int, float],
    gold: Mapping[int, float] | None = None,
    min_answers: int = 5,
    tolerance: float = 0.0,
) -> list[AnnotatorQuality]:
    """Each annotator's agreement with the consensus and accuracy on gold items.

    ``consensus`` and ``gold`` map item numbers to values in the table's terms (codes for
    nominal tables). An answer agrees when it is within ``tolerance`` of the reference.
    Annotators with ``min_answers`` or more are flagged as outliers when their agreement
    is more than three scaled median absolute deviations below the median annotator's, or
    below one half.
    """
    items, raters, values = table.items, table.raters, table.values
    _, item_idx, per_item = np.unique(items, return_inverse=True, return_counts=True)
    shared = per_item[item_idx] >= 2  # agreement only where someone else answered too
    n = len(table.annotators)

    def tally(reference: Mapping[int, float], where: np.ndarray) -> tuple[np.ndarray, ...]:
        keys = np.fromiter(reference.keys(), dtype=np.int64, count=len(reference))
        refs = np.fromiter(reference.values(), dtype=np.float64, count=len(reference))
        order = np.argsort(keys)
        keys, refs = keys[order], refs[order]
        pos = np.minimum(np.searchsorted(keys, items), max(len(keys) - 1, 0))
        known = where & (keys[pos] == items) if len(keys) else np.zeros(len(items), bool)
        right = known & (np.abs(values - (refs[pos] if len(keys) else 0.0)) <= tolerance)
        return np.bincount(raters[known], minlength=n), np.bincount(raters[right], minlength=n)

    compared, agreed = tally(consensus, shared)
    graded, correct = tally(gold or {}, np.ones(len(items), bool))
    answers = np.bincount(raters, minlength=n)
    out = [
        AnnotatorQuality(
            annotator=name,
            answers=int(answers[r]),
            agreement=float(agreed[r] / compared[r]) if compared[r] else None,
            gold_items=int(graded[r]),
            gold_accuracy=float(correct[r] / graded[r]) if graded[r] else None,
        )
        for r, name in enumerate(table.annotators)
    ]
    _flag_outliers(out, min_answers)
    return out


def _flag_outliers(quality: list[AnnotatorQuality], min_answers: int) -> None:
    scores = [q.agreement for q in quality if q.agreement is not None and q.answers >= min_answers]
    median = float(np.median(scores)) if scores else 0.0
    spread = 1.4826 * float(np.median(np.abs(np.array(scores) - median))) if scores else 0.0
    for q in quality:
        reasons = []
        if q.agreement is not None and q.answers >= min_answers:
            if q.agreement < 0.5:
                reasons.append(f"agrees with the consensus on {q.agreement:.0%} of items")
            elif len(scores) >= 3 and q.agreement < median - 3 * max(spread, 0.05):
                reasons.append(f"agreement {q.agreement:.2f}, median annotator {median:.2f}")
        if q.gold_accuracy is not None and q.gold_items >= min_answers and q.gold_accuracy < 0.5:
            reasons.append(f"gold accuracy {q.gold_accuracy:.0%}")
        q.flagged, q.reason = bool(reasons), "; ".join(reasons)
