"""Agreement statistics against the reference implementations and textbook examples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from datamill.quality.agreement import (
    AnswerTable,
    annotator_quality,
    cohen_kappa,
    fleiss_kappa,
    kendall_w,
    krippendorff_alpha,
    mean_pairwise_cohen,
    table_fleiss_kappa,
)
from support import require

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4 observers ×
# 12 units example with missing values; his published results are below.
K_DATA = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def table_of(level: str, rows: dict[str, list[object]]) -> AnswerTable:
    table = AnswerTable(level)  # type: ignore[arg-type]
    for annotator, values in rows.items():
        for item, value in enumerate(values):
            if value is not None:
                table.add(item, annotator, value)  # type: ignore[arg-type]
    return table


@pytest.mark.parametrize(
    ("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_textbook_example_with_missing_values(level: str, expected: float) -> None:
    assert krippendorff_alpha(table_of(level, K_DATA)) == pytest.approx(expected, abs=5e-4)


def random_answers(rng: np.random.Generator, raters: int, items: int, values: int, missing: float):
    """A rater × item matrix of correlated labels with NaN holes."""
    truth = rng.integers(0, values, items)
    noise = rng.integers(0, values, (raters, items))
    keep = rng.random((raters, items)) < 0.7
    data = np.where(keep, truth, noise).astype(float)
    data[rng.random((raters, items)) < missing] = np.nan
    return data


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_matches_the_package_on_random_data_with_gaps(seed: int, level: str) -> None:
    krippendorff = require("krippendorff", "pip install 'datamill[quality]'")
    rng = np.random.default_rng(seed)
    data = random_answers(rng, raters=5, items=60, values=5, missing=0.3)
    table = AnswerTable(level)  # type: ignore[arg-type]
    for r, i in zip(*np.nonzero(~np.isnan(data)), strict=True):
        table.add(int(i) * 7 + 3, f"r{r}", int(data[r, i]) if level == "nominal" else data[r, i])
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha(table) == pytest.approx(expected, abs=1e-9)


def test_alpha_is_undefined_without_variation_or_pairs() -> None:
    assert krippendorff_alpha(table_of("nominal", {"a": ["x", "x"], "b": ["x", "x"]})) is None
    assert krippendorff_alpha(table_of("nominal", {"a": ["x", None], "b": [None, "y"]})) is None
    assert krippendorff_alpha(AnswerTable("interval")) is None


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_matches_statsmodels(seed: int) -> None:
    inter_rater = require("statsmodels.stats.inter_rater", "pip install statsmodels")
    rng = np.random.default_rng(seed)
    data = random_answers(rng, raters=4, items=80, values=3, missing=0.0).astype(int)
    table = AnswerTable("nominal")
    for r, i in itertools.product(range(4), range(80)):
        table.add(i, f"r{r}", int(data[r, i]))
    counts, _ = inter_rater.aggregate_raters(data.T)
    assert table_fleiss_kappa(table) == pytest.approx(inter_rater.fleiss_kappa(counts), abs=1e-12)


def test_fleiss_allows_items_with_different_numbers_of_raters() -> None:
    # Items with one rating carry no agreement information and are left out.
    counts = np.array([[3, 0], [0, 3], [2, 1], [1, 0], [2, 0]])
    full = fleiss_kappa(counts[[0, 1, 2, 4]])
    assert fleiss_kappa(counts) == pytest.approx(full)
    assert fleiss_kappa(np.array([[2, 0], [2, 0]])) is None  # one category: undefined
    assert fleiss_kappa(np.array([[1, 0]])) is None


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", range(4))
def test_cohen_matches_sklearn_over_items_both_answered(seed: int, weights: str | None) -> None:
    metrics = require("sklearn.metrics", "pip install 'datamill[quality]'")
    rng = np.random.default_rng(seed)
    data = random_answers(rng, raters=2, items=100, values=5, missing=0.2)
    a = [None if np.isnan(v) else int(v) for v in data[0]]
    b = [None if np.isnan(v) else int(v) for v in data[1]]
    both = ~np.isnan(data).any(axis=0)
    expected = metrics.cohen_kappa_score(
        data[0][both].astype(int), data[1][both].astype(int), weights=weights
    )
    assert cohen_kappa(a, b, weights) == pytest.approx(expected)  # type: ignore[arg-type]


def test_weighted_cohen_orders_labels_not_by_first_appearance() -> None:
    # One point off everywhere: linear weights give partial credit; unweighted none.
    a, b = [1, 2, 3, 4, 5, 1, 2], [2, 3, 4, 5, 4, 1, 2]
    assert cohen_kappa(a, b, "linear") > cohen_kappa(a, b) > -1  # type: ignore[operator]


def test_cohen_undefined_cases() -> None:
    assert cohen_kappa([1, None], [None, 1]) is None
    assert cohen_kappa(["x", "x", "x"], ["x", "x", "x"]) is None


def test_mean_pairwise_cohen_is_cohen_for_two_raters() -> None:
    table = table_of("nominal", {"a": list("xxyyxyxy"), "b": list("xyyyxyxx")})
    assert mean_pairwise_cohen(table) == pytest.approx(
        cohen_kappa(list("xxyyxyxy"), list("xyyyxyxx"))
    )


@pytest.mark.parametrize("level", ["nominal", "interval"])
def test_mean_pairwise_cohen_over_raters_with_gaps_matches_sklearn(level: str) -> None:
    metrics = require("sklearn.metrics", "pip install 'datamill[quality]'")
    data = random_answers(np.random.default_rng(11), raters=4, items=50, values=4, missing=0.4)
    table = AnswerTable(level)  # type: ignore[arg-type]
    for r, i in zip(*np.nonzero(~np.isnan(data)), strict=True):
        table.add(int(i), f"r{r}", int(data[r, i]))
    expected = []
    for a, b in itertools.combinations(range(4), 2):
        both = ~np.isnan(data[a]) & ~np.isnan(data[b])
        weights = None if level == "nominal" else "quadratic"
        expected.append(metrics.cohen_kappa_score(data[a][both], data[b][both], weights=weights))
    assert mean_pairwise_cohen(table) == pytest.approx(np.mean(expected))


def test_kendall_w() -> None:
    same = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]])
    assert kendall_w(same) == pytest.approx(1.0)
    opposite = np.array([[1, 2, 3, 4], [4, 3, 2, 1]])
    assert kendall_w(opposite) == pytest.approx(0.0)
    # Siegel & Castellan style hand example: 3 raters, 3 objects.
    ranks = np.array([[1, 2, 3], [1, 3, 2], [2, 1, 3]])
    # totals 4, 6, 8 → S = 8; W = 12·8 / (9·24) = 0.444…
    assert kendall_w(ranks) == pytest.approx(12 * 8 / (9 * 24))
    assert kendall_w(np.array([[1, 2]])) is None


def test_annotator_quality_flags_the_random_clicker() -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, 200)
    table = AnswerTable("nominal")
    for item, label in enumerate(truth):
        for name in ("good1", "good2", "good3", "good4"):
            table.add(item, name, int(label if rng.random() < 0.9 else rng.integers(0, 3)))
        table.add(item, "clicker", int(rng.integers(0, 3)))
    consensus = {i: table.encode(int(v)) for i, v in enumerate(truth)}
    gold = {i: table.encode(int(truth[i])) for i in range(0, 200, 10)}
    report = {q.annotator: q for q in annotator_quality(table, consensus, gold)}
    assert report["clicker"].flagged and "gold accuracy" in report["clicker"].reason
    assert report["clicker"].gold_items == 20
    assert not any(report[f"good{i}"].flagged for i in range(1, 5))
    assert report["good1"].agreement == pytest.approx(0.93, abs=0.05)


def test_annotator_quality_with_a_tolerance_for_ratings() -> None:
    table = table_of("interval", {"a": [1, 2, 3, 4, 5], "b": [2, 3, 4, 5, 4], "c": [1, 2, 3, 4, 5]})
    consensus = {i: float(v) for i, v in enumerate([1, 2, 3, 4, 5])}
    strict = {q.annotator: q.agreement for q in annotator_quality(table, consensus)}
    loose = {q.annotator: q.agreement for q in annotator_quality(table, consensus, tolerance=1)}
    assert strict["b"] == 0.0 and loose["b"] == 1.0 and strict["a"] == 1.0


def test_consensus_of_a_table_is_the_majority_or_the_median() -> None:
    from datamill.quality.answers import consensus_of

    ratings = table_of("interval", {"a": [1, 2, 7], "b": [5, 4, None], "c": [3, None, None]})
    assert consensus_of(ratings) == {0: 3.0, 1: 3.0, 2: 7.0}
    labels = table_of("nominal", {"a": ["x", "x", "y"], "b": ["x", "y", None], "c": ["y"]})
    # item 1 is a tie and has no consensus
    assert {i: labels.label(v) for i, v in consensus_of(labels).items()} == {0: "x", 2: "y"}
