"""Collapse monitor: compare a diversity profile with a baseline and warn on a fall.

The baseline is an earlier version or generation of the same recipe, or a human reference
set. Every metric is compared in its "more diverse" direction: for compression ratio and
self-BLEU, where higher means less diverse, the compared value is 1/ratio and 1 − self-BLEU.
A metric whose diversity drops by more than ``threshold`` (relative) raises a warning;
so does a coverage field whose effective number of values falls by more than the threshold.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from datamill.quality.diversity import Profile

# (profile field, label, higher value means more diverse)
METRICS: list[tuple[str, str, bool]] = [
    ("distinct_1", "distinct-1", True),
    ("distinct_2", "distinct-2", True),
    ("distinct_3", "distinct-3", True),
    ("mattr", "MATTR", True),
    ("compression_ratio", "compression ratio", False),
    ("self_bleu", "self-BLEU", False),
    ("dispersion", "embedding dispersion", True),
]


class Change(BaseModel):
    metric: str
    label: str
    baseline: float | None
    current: float | None
    drop: float | None  # relative fall in diversity: 0.2 = 20% less diverse; < 0 = more
    warn: bool = False


class Comparison(BaseModel):
    threshold: float
    changes: list[Change] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def warnings(self) -> list[Change]:
        return [c for c in self.changes if c.warn]


def _diverse(value: float, higher_is_diverse: bool, metric: str) -> float:
    if higher_is_diverse:
        return value
    if metric == "compression_ratio":
        return 1.0 / value if value else 0.0
    return 1.0 - value


def relative_drop(baseline: float, current: float) -> float | None:
    """(baseline − current) / baseline, or None when the baseline is zero."""
    return (baseline - current) / baseline if baseline > 0 else None


def compare(baseline: Profile, current: Profile, threshold: float = 0.15) -> Comparison:
    """Each metric's relative fall in diversity from ``baseline`` to ``current``."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    result = Comparison(threshold=threshold)
    for metric, label, higher in METRICS:
        before, after = getattr(baseline, metric), getattr(current, metric)
        drop = None
        if before is not None and after is not None:
            drop = relative_drop(_diverse(before, higher, metric), _diverse(after, higher, metric))
        warn = drop is not None and drop > threshold
        result.changes.append(
            Change(metric=metric, label=label, baseline=before, current=after, drop=drop, warn=warn)
        )
    for name in sorted(set(baseline.coverage) & set(current.coverage)):
        before, after = baseline.coverage[name].effective, current.coverage[name].effective
        drop = relative_drop(before, after)
        result.changes.append(
            Change(
                metric=f"coverage.{name}",
                label=f"{name} coverage (effective values)",
                baseline=before,
                current=after,
                drop=drop,
                warn=drop is not None and drop > threshold,
            )
        )
    if baseline.sample != current.sample:
        result.notes.append(
            f"samples differ ({baseline.sample} vs {current.sample} texts): distinct-n and "
            "self-BLEU depend on sample size; compare profiles made with the same --sample"
        )
    if baseline.part != current.part:
        result.notes.append(f"different parts compared: {baseline.part} vs {current.part}")
    return result
