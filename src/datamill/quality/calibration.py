"""How far an LLM judge can be trusted: its verdicts against human labels, on plain lists.

Pairwise verdicts are coded ``1`` (the first response is better), ``2`` (the second) and
``0`` (a tie); a judge with no verdict for an item (it failed, or its two orders disagreed)
gives ``None``, which counts as a tie where a verdict is needed and is reported apart.
Ratings are numbers (a 1-5 judge score against a human rating).

Tie handling, for pairwise accuracy: ``exclude`` (the usual report, as in MT-Bench and
LLMBar) leaves out items humans called a tie, and a judge's tie on the rest is wrong;
``half`` gives a judge's tie half a point there; ``strict`` keeps human ties, which the
judge must then call a tie too. Cohen's kappa is over the three classes on every item.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from datamill.errors import MissingDependency

Verdict = int | None
TIES = ("exclude", "half", "strict")


def _pairs(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise ValueError(f"the two lists differ in length: {len(a)} and {len(b)}")


def cohen_kappa(a: Sequence[object], b: Sequence[object], weights: str | None = None) -> float:
    """Cohen's kappa between two raters over the same items (NaN when undefined: no
    items, or both raters always give one and the same label)."""
    try:
        from sklearn.metrics import cohen_kappa_score
    except ImportError:
        raise MissingDependency("scikit-learn", "pip install 'datamill[quality]'") from None
    _pairs(a, b)
    if not a or len(set(a) | set(b)) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(list(a), list(b), weights=weights))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation, ties given their average rank (NaN if either list is
    constant or has fewer than two items)."""
    try:
        from scipy.stats import spearmanr
    except ImportError:
        raise MissingDependency("scipy", "pip install 'datamill[quality]'") from None
    _pairs(x, y)
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(spearmanr(x, y).statistic)


def pairwise_accuracy(
    judge: Sequence[Verdict], human: Sequence[int], ties: str = "exclude"
) -> float:
    """The share of items on which the judge picks what humans picked (see the module
    docstring for ``ties``); NaN when no item is left."""
    _pairs(judge, human)
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, not {ties!r}")
    points = []
    for j, h in zip(judge, human, strict=True):
        j = j or 0
        if h == 0 and ties != "strict":
            continue
        points.append(0.5 if (ties == "half" and j == 0) else float(j == h))
    return sum(points) / len(points) if points else math.nan


@dataclass(frozen=True)
class PositionBias:
    """How often a judge's verdict changed when the two responses swapped places."""

    pairs: int
    consistency: float  # both orders gave the same verdict
    first: float  # the first-shown response won both times
    second: float  # the second-shown response won both times

    @property
    def rate(self) -> float:
        return self.first + self.second


def position_bias(forward: Sequence[Verdict], reverse: Sequence[Verdict]) -> PositionBias:
    """From verdicts in shown positions: ``forward`` with the pair as given, ``reverse``
    with it swapped (so a consistent judge says 1 then 2, 2 then 1, or 0 twice)."""
    _pairs(forward, reverse)
    both = [
        (f, r) for f, r in zip(forward, reverse, strict=True) if f is not None and r is not None
    ]
    if not both:
        return PositionBias(0, math.nan, math.nan, math.nan)
    n = len(both)
    swap = {1: 2, 2: 1, 0: 0}
    return PositionBias(
        pairs=n,
        consistency=sum(swap[f] == r for f, r in both) / n,
        first=sum(f == r == 1 for f, r in both) / n,
        second=sum(f == r == 2 for f, r in both) / n,
    )


def concordance(judge: Sequence[float], human: Sequence[float]) -> float:
    """Pairwise accuracy of ratings: over every two items humans rated differently, the
    share the judge orders the same way (a judge tie counts half); NaN if there are none."""
    _pairs(judge, human)
    j, h = np.asarray(judge, float), np.asarray(human, float)
    upper = np.triu_indices(len(j), k=1)
    dh = np.sign(h[:, None] - h[None, :])[upper]
    dj = np.sign(j[:, None] - j[None, :])[upper]
    rated = dh != 0
    if not rated.any():
        return math.nan
    return float(np.mean(np.where(dj[rated] == 0, 0.5, dj[rated] == dh[rated])))


@dataclass(frozen=True)
class Calibration:
    """A judge's pairwise verdicts against human labels, all figures at once."""

    items: int
    no_verdict: int  # items the judge gave no verdict on (a failure or an inconsistency)
    accuracy: float  # ties excluded
    accuracy_half_ties: float
    accuracy_strict: float
    kappa: float
    spearman: float
    position_bias: PositionBias | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | (
            {"position_bias_rate": self.position_bias.rate} if self.position_bias else {}
        )


def _direction(verdict: Verdict) -> int:
    return {1: 1, 2: -1}.get(verdict or 0, 0)


def calibrate_pairwise(
    judge: Sequence[Verdict],
    human: Sequence[int],
    forward: Sequence[Verdict] | None = None,
    reverse: Sequence[Verdict] | None = None,
) -> Calibration:
    """Every figure for pairwise verdicts; Spearman is over the preference's direction
    (+1 first, 0 tie, -1 second). ``forward``/``reverse``: verdicts in each order shown,
    for the position-bias rate."""
    _pairs(judge, human)
    coded = [j or 0 for j in judge]
    bias = None if forward is None or reverse is None else position_bias(forward, reverse)
    return Calibration(
        items=len(judge),
        no_verdict=sum(j is None for j in judge),
        accuracy=pairwise_accuracy(judge, human, "exclude"),
        accuracy_half_ties=pairwise_accuracy(judge, human, "half"),
        accuracy_strict=pairwise_accuracy(judge, human, "strict"),
        kappa=cohen_kappa(coded, list(human)),
        spearman=spearman([_direction(j) for j in judge], [_direction(h) for h in human]),
        position_bias=bias,
    )


def calibrate_ratings(judge: Sequence[float], human: Sequence[float]) -> dict[str, float]:
    """A judge's scores against human ratings of the same items: Spearman, pairwise
    accuracy (:func:`concordance`) and kappa on the rounded scores, quadratic-weighted."""
    _pairs(judge, human)
    rounded_j, rounded_h = [round(x) for x in judge], [round(x) for x in human]
    return {
        "items": float(len(judge)),
        "spearman": spearman(judge, human),
        "pairwise_accuracy": concordance(judge, human),
        "kappa_quadratic": cohen_kappa(rounded_j, rounded_h, weights="quadratic"),
    }
