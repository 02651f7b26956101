"""Judge calibration figures on plain lists: hand-worked cases, ties, brute force."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import random
from pathlib import Path

import pytest

from datamill.quality.calibration import (
    calibrate_pairwise,
    calibrate_ratings,
    cohen_kappa,
    concordance,
    pairwise_accuracy,
    position_bias,
    spearman,
)
from support import require


@pytest.fixture(autouse=True)
def _libraries() -> None:
    require("sklearn", "pip install 'datamill[quality]'")
    require("scipy", "pip install 'datamill[quality]'")


def test_kappa_by_hand() -> None:
    # 10 items: agree on 7 (4 x "1", 3 x "2"); observed 0.7. Marginals a: 5/5, b: 6/4 ->
    # expected 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4.
    a = [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    b = [1, 1, 1, 1, 2, 2, 2, 2, 1, 1]
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == 1.0
    assert math.isnan(cohen_kappa([1, 1], [1, 1]))  # one label only: undefined
    assert math.isnan(cohen_kappa([], []))
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa([1], [1, 2])


def test_spearman_gives_ties_their_average_rank() -> None:
    # x ranks 1, 2.5, 2.5, 4; y ranks 1, 3, 2, 4: Pearson of the ranks.
    rx, ry = [1, 2.5, 2.5, 4], [1, 3, 2, 4]
    mx, my = sum(rx) / 4, sum(ry) / 4
    cov = sum((p - mx) * (q - my) for p, q in zip(rx, ry, strict=True))
    norm = math.sqrt(sum((p - mx) ** 2 for p in rx) * sum((q - my) ** 2 for q in ry))
    assert spearman([10, 20, 20, 30], [1, 7, 5, 9]) == pytest.approx(cov / norm)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [2]))


def test_pairwise_accuracy_tie_handling() -> None:
    human = [1, 2, 0, 1, 2]
    judge = [1, 0, 0, None, 2]  # right, tie on a preference, right tie, no verdict, right
    assert pairwise_accuracy(judge, human, "exclude") == pytest.approx(2 / 4)
    assert pairwise_accuracy(judge, human, "half") == pytest.approx(3 / 4)  # None is a tie
    assert pairwise_accuracy(judge, human, "strict") == pytest.approx(3 / 5)
    assert math.isnan(pairwise_accuracy([1], [0]))  # only a human tie, left out
    with pytest.raises(ValueError, match="ties must be"):
        pairwise_accuracy([1], [1], "sometimes")


def test_position_bias_counts_same_position_twice() -> None:
    forward = [1, 1, 2, 0, 2, None, 1]
    reverse = [2, 1, 2, 0, 1, 1, 0]  # consistent, first, second, tie, consistent, -, mixed
    bias = position_bias(forward, reverse)
    assert bias.pairs == 6
    assert bias.consistency == pytest.approx(3 / 6)
    assert (bias.first, bias.second) == (pytest.approx(1 / 6), pytest.approx(1 / 6))
    assert bias.rate == pytest.approx(2 / 6)
    assert math.isnan(position_bias([None], [1]).consistency)


def test_concordance_against_brute_force() -> None:
    rng = random.Random(7)
    judge = [rng.choice([1, 2, 3, 4, 5]) for _ in range(40)]
    human = [rng.choice([1, 2, 3, 4, 5]) for _ in range(40)]
    points = []
    for i, k in itertools.combinations(range(40), 2):
        if human[i] == human[k]:
            continue
        if judge[i] == judge[k]:
            points.append(0.5)
        else:
            points.append(float((judge[i] > judge[k]) == (human[i] > human[k])))
    assert concordance(judge, human) == pytest.approx(sum(points) / len(points))
    assert math.isnan(concordance([1, 2], [3, 3]))


def test_calibrate_pairwise_reports_everything() -> None:
    human = [1, 2, 1, 2, 0, 1]
    judge = [1, 2, 2, None, 0, 1]
    cal = calibrate_pairwise(judge, human, forward=[1, 1, 2, 1, 0, 1], reverse=[2, 2, 1, 1, 0, 2])
    assert cal.items == 6 and cal.no_verdict == 1
    assert cal.accuracy == pytest.approx(3 / 5)
    assert cal.kappa == pytest.approx(cohen_kappa([1, 2, 2, 0, 0, 1], human))
    assert cal.spearman > 0
    assert cal.position_bias is not None and cal.position_bias.first == pytest.approx(1 / 6)
    assert cal.as_dict()["position_bias_rate"] == pytest.approx(1 / 6)


def test_calibrate_ratings() -> None:
    figures = calibrate_ratings([4.5, 3.0, 1.2, 2.0], [5, 3, 1, 2])
    assert figures["spearman"] == pytest.approx(1.0)
    assert figures["pairwise_accuracy"] == 1.0
    assert figures["kappa_quadratic"] > 0.8


LLMBAR = Path(__file__).resolve().parents[1] / "data" / "llmbar"


@pytest.mark.parametrize(
    ("result", "figures"),
    [
        # Upstream's statistics.json: correct_False, correct_True, correct_both, equal,
        # kappa_agreement (between the two orders).
        ("Natural_evaluators_GPT-4_Vanilla_result.json.gz", (0.95, 0.96, 0.93, 0.95, 0.8977)),
        (
            "Processed_MT-Bench_evaluators_GPT-4_Vanilla_NoRules_result.json.gz",
            (0.795, 0.825, 0.745, 0.87, 0.7401),
        ),
    ],
)
def test_gpt4_verdicts_give_llmbars_published_figures(result: str, figures: tuple) -> None:
    """GPT-4's real verdicts on LLMBar, in both orders, through these functions, give the
    figures LLMBar published for them."""
    rows = json.loads(gzip.decompress((LLMBAR / result).read_bytes()))
    human = [int(r["label"]) for r in rows]
    shown = [int(r["results"][0]["swap = False"]["winner"]) for r in rows]
    swapped = [int(r["results"][0]["swap = True"]["winner"]) for r in rows]  # original terms
    reverse = [3 - w for w in swapped]  # as shown: the second response was shown first
    consistent = [a if a == b else None for a, b in zip(shown, swapped, strict=True)]
    cal = calibrate_pairwise(consistent, human, forward=shown, reverse=reverse)
    first, second, both, equal, kappa = figures
    assert pairwise_accuracy(shown, human) == pytest.approx(first)
    assert pairwise_accuracy(swapped, human) == pytest.approx(second)
    assert cal.accuracy == pytest.approx(both)
    assert cal.position_bias is not None and cal.position_bias.consistency == pytest.approx(equal)
    assert cohen_kappa(shown, swapped) == pytest.approx(kappa, abs=1e-4)
