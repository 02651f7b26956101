"""Consensus: on PandaLM's real human labels, on simulated annotators, and by hand."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from datamill.errors import InputError
from datamill.quality import consensus as agg
from datamill.quality.agreement import AnswerTable, krippendorff_alpha, table_fleiss_kappa
from datamill.quality.questions import AnswerError, Question, check, infer, load_questions
from support import require

PANDALM = Path(__file__).parents[1] / "data" / "pandalm" / "testset-v1.json"


def pandalm() -> list[dict[str, int]]:
    return json.loads(PANDALM.read_text(encoding="utf-8"))


# -- real data: PandaLM, 999 pairs, 3 human annotators (0 = tie, 1, 2) -----------------


def test_pandalm_agreement_and_majority_vote() -> None:
    rows = pandalm()
    table = AnswerTable("nominal")
    outcomes = []
    for row in rows:
        labels = [row[f"annotator{i}"] for i in (1, 2, 3)]
        for i, label in enumerate(labels, 1):
            table.add(row["idx"], f"annotator{i}", label)
        outcomes.append(agg.vote(labels, min_agreement=0.5))
    assert len(rows) == 999
    unanimous = sum(o.agreement == 1.0 for o in outcomes)
    assert unanimous == 879  # as the dataset's description says
    assert all(o.resolved for o in outcomes)  # three raters, three labels: never a tie here
    assert sum(o.agreement == pytest.approx(2 / 3) for o in outcomes) == 120
    # The annotators' own "tie" label (0) is a label like any other, not a voting tie.
    assert Counter(o.value for o in outcomes) == Counter({2: 472, 1: 422, 0: 105})
    kappa = table_fleiss_kappa(table)
    inter_rater = require("statsmodels.stats.inter_rater", "pip install statsmodels")
    counts, _ = inter_rater.aggregate_raters(
        [[r[f"annotator{i}"] for i in (1, 2, 3)] for r in rows]
    )
    assert kappa == pytest.approx(inter_rater.fleiss_kappa(counts), abs=1e-12)
    assert kappa == pytest.approx(0.864, abs=1e-3)
    assert krippendorff_alpha(table) == pytest.approx(0.864, abs=1e-3)


def test_pandalm_two_annotators_disagreeing_is_a_tie_for_adjudication() -> None:
    rows = pandalm()
    outcomes = [agg.vote([r["annotator1"], r["annotator2"]], 0.5) for r in rows]
    disagree = sum(r["annotator1"] != r["annotator2"] for r in rows)
    ties = [o for o in outcomes if not o.resolved]
    assert len(ties) == disagree > 0
    assert all(o.reason.startswith("tie between") and o.value is None for o in ties)


def test_pandalm_stricter_threshold_sends_split_votes_to_adjudication() -> None:
    outcomes = [agg.vote([r[f"annotator{i}"] for i in (1, 2, 3)], 0.75) for r in pandalm()]
    assert sum(not o.resolved for o in outcomes) == 120
    assert "below 0.75" in next(o.reason for o in outcomes if not o.resolved)


# -- Dawid–Skene on simulated annotators of known accuracy ------------------------------


def simulate(seed: int, accuracies: list[float], items: int, labels: int = 3):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, labels, items)
    table = AnswerTable("nominal")
    for item in range(items):
        for worker, accuracy in enumerate(accuracies):
            if rng.random() < accuracy:
                answer = truth[item]
            else:  # a wrong label, uniformly
                answer = (truth[item] + rng.integers(1, labels)) % labels
            table.add(item, f"w{worker}", int(answer))
    return truth, table


@pytest.mark.parametrize("seed", range(3))
def test_dawid_skene_beats_majority_when_some_workers_are_bad(seed: int) -> None:
    require("crowdkit", "pip install --no-deps crowd-kit")
    # Two careful workers and three careless ones: the careless outvote the careful.
    truth, table = simulate(seed, [0.9, 0.9, 0.4, 0.4, 0.4], items=400)
    posteriors = agg.dawid_skene(table)
    by_item: dict[int, list[int]] = {}
    for item, value in zip(table.items, table.values, strict=True):
        by_item.setdefault(int(item), []).append(int(value))
    majority = [agg.vote(by_item[i], 0.0).value for i in range(400)]
    ds = [posteriors.get(i)[0] for i in range(400)]  # type: ignore[index]
    acc_mv = np.mean([m == t for m, t in zip(majority, truth, strict=True)])
    acc_ds = np.mean([d == t for d, t in zip(ds, truth, strict=True)])
    assert acc_ds > acc_mv + 0.05, (acc_ds, acc_mv)
    assert acc_ds > 0.85
    assert posteriors.get(10_000) is None


def test_dawid_skene_keeps_string_labels() -> None:
    require("crowdkit", "pip install --no-deps crowd-kit")
    table = AnswerTable("nominal")
    for item, labels in enumerate([("x", "x", "y"), ("y", "y", "y"), ("x", "y", "x")]):
        for worker, label in enumerate(labels):
            table.add(item * 5, f"w{worker}", label)
    posteriors = agg.dawid_skene(table)
    assert [posteriors.get(i)[0] for i in (0, 5, 10)] == ["x", "y", "x"]  # type: ignore[index]
    assert 0.5 < posteriors.get(5)[1] <= 1.0  # type: ignore[index]


def test_posterior_vote_breaks_ties_but_respects_the_threshold() -> None:
    out = agg.posterior_vote(["a", "b"], "b", 0.97, min_agreement=0.5)
    assert out.resolved and out.value == "b" and out.details["posterior"] == 0.97
    out = agg.posterior_vote(["a", "b", "c"], "c", 0.9, min_agreement=0.5)
    assert not out.resolved and out.agreement == pytest.approx(1 / 3)


# -- Bradley–Terry ----------------------------------------------------------------------


def comparisons(seed: int, strengths: np.ndarray, n: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        i, j = rng.choice(len(strengths), 2, replace=False)
        p_i = 1 / (1 + np.exp(strengths[j] - strengths[i]))
        pairs.append((int(i), int(j)) if rng.random() < p_i else (int(j), int(i)))
    return pairs


@pytest.mark.parametrize("seed", range(3))
def test_bradley_terry_recovers_a_known_order(seed: int) -> None:
    strengths = np.array([2.0, 1.0, 0.0, -1.0, -2.0, 0.5])
    scores = agg.bradley_terry(comparisons(seed, strengths, 1500), len(strengths))
    assert list(np.argsort(scores)) == list(np.argsort(strengths))
    assert np.allclose(scores, strengths - strengths.mean(), atol=0.3)


def test_crowdkit_bradley_terry_stops_short_of_the_maximum_likelihood() -> None:
    """Why choix: crowd-kit 1.4.2's BradleyTerry ends after two iterations. If this
    starts failing, crowd-kit was fixed and could be used instead."""
    pd = require("pandas", "pip install 'datamill[quality]'")
    crowdkit = require("crowdkit.aggregation", "pip install --no-deps crowd-kit")
    strengths = np.array([2.0, 1.0, 0.0, -1.0, -2.0])
    pairs = comparisons(0, strengths, 2000)
    frame = pd.DataFrame(
        [("w", a, b, a) for a, b in pairs], columns=["worker", "left", "right", "label"]
    )
    theirs = np.log(crowdkit.BradleyTerry(n_iter=1000).fit_predict(frame).sort_index().to_numpy())
    ours = np.array(agg.bradley_terry(pairs, 5))
    assert np.ptp(ours) == pytest.approx(4.0, abs=0.4)
    assert np.ptp(theirs) < 3.0


def test_bradley_terry_never_winning_stays_finite() -> None:
    scores = agg.bradley_terry([(0, 1), (0, 2), (1, 2)], 3)
    assert scores[0] > scores[1] > scores[2] and all(np.isfinite(scores))
    assert agg.bradley_terry([], 3) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("kind", "value", "pairs"),
    [
        ("pairwise", {"chosen": 1, "rejected": 0, "tie": False}, [(1, 0)]),
        ("pairwise", {"chosen": None, "rejected": None, "tie": True}, []),
        ("pairwise", "B", [(1, 0)]),
        ("pairwise", {"choice": "A", "strength": 2}, [(0, 1)]),
        ("pairwise", "tie", []),
        ("ranking", [2, 0, 1], [(2, 0), (2, 1), (0, 1)]),
        ("ranking", ["x", "y"], []),
        ("label", "A", []),
    ],
)
def test_candidate_pairs(kind: str, value: object, pairs: list[tuple[int, int]]) -> None:
    assert agg.candidate_pairs(kind, value) == pairs  # type: ignore[arg-type]


def test_model_strengths_order_models_by_human_preference() -> None:
    wins = Counter({("big", "small"): 30, ("small", "big"): 10, ("small", "tiny"): 25})
    wins[("tiny", "small")] = 5
    got = agg.strengths(wins)
    assert [s.name for s in got] == ["big", "small", "tiny"]
    assert (got[0].wins, got[0].losses) == (30, 10) and got[1].wins == 35


def test_ranking_consensus_and_kendall_agreement() -> None:
    out = agg.ranking([[2, 0, 1], [2, 0, 1], [2, 1, 0]], min_agreement=0.5)
    assert out.value == [2, 0, 1] and out.resolved
    assert out.agreement == pytest.approx(7 / 9)
    split = agg.ranking([[0, 1, 2], [2, 1, 0]], min_agreement=0.5)
    assert not split.resolved and split.agreement == pytest.approx(0.0)


# -- ratings, rubrics, sets, spans, texts -----------------------------------------------


def test_rating_median_trimmed_mean_and_spread() -> None:
    out = agg.rating([4, 5, 5, 1], (1, 5), 0.5, "median")
    assert out.value == 4.5 and out.agreement == 0.0 and not out.resolved
    close = agg.rating([4, 5, 4], (1, 5), 0.5, "median")
    assert close.value == 4.0 and close.agreement == 0.75 and close.resolved
    trimmed = agg.rating([1, 4, 4, 4, 5], (1, 5), 0.0, "trimmed_mean")
    assert trimmed.value == 4.0  # the lowest and highest trimmed
    stats = require("scipy.stats", "pip install 'datamill[quality]'")
    values = np.random.default_rng(0).normal(3, 1, 23)
    trimmed = agg.rating(list(values), (0, 6), 0.0, "trimmed_mean")
    assert trimmed.value == pytest.approx(stats.trim_mean(values, 0.2))


def test_rubric_resolves_per_criterion_and_names_the_worst() -> None:
    out = agg.rubric(
        [{"accuracy": 5, "tone": 1}, {"accuracy": 4, "tone": 5}, {"accuracy": 5, "tone": 3}],
        (1, 5),
        0.5,
        "median",
    )
    assert out.value == {"accuracy": 5.0, "tone": 3.0}
    assert not out.resolved and "'tone'" in out.reason
    assert out.details["by_criterion"] == {"accuracy": 0.75, "tone": 0.0}


def test_label_sets() -> None:
    out = agg.label_set([frozenset({"a", "b"}), frozenset({"a"}), frozenset({"a", "c"})], 0.5)
    assert out.value == ["a"] and out.resolved
    assert out.agreement == pytest.approx((0.5 + 1 + 0.5) / 3)
    tie = agg.label_set([frozenset({"a"}), frozenset()], 0.5)
    assert not tie.resolved and "tie on a" in tie.reason
    assert agg.label_set([frozenset(), frozenset()], 0.5).value == []


def test_spans_merge_characters_marked_by_most() -> None:
    a = [{"message": 1, "start": 0, "end": 10, "label": "hallucination"}]
    b = [{"message": 1, "start": 2, "end": 12, "label": "hallucination"}]
    c = [{"message": 1, "start": 4, "end": 6, "label": "hallucination"}]
    out = agg.spans([a, b, c], 0.0)
    assert out.value == [{"message": 1, "label": "hallucination", "start": 2, "end": 10}]


def test_text_medoid() -> None:
    texts = ["The cat sat on the mat.", "The cat sat on a mat.", "Dogs bark loudly at night."]
    out = agg.text(texts, 0.5)
    assert out.value in texts[:2] and out.details["chosen"] in (0, 1)
    assert 0.5 < out.agreement < 1  # type: ignore[operator]
    rewrites = [{"text": "same", "diff": "x"}, {"text": "same", "diff": "y"}]
    assert agg.text(rewrites, 0.9).agreement == 1.0


# -- questions --------------------------------------------------------------------------


def test_questions_files_in_every_form(tmp_path: Path) -> None:
    short = tmp_path / "short.yaml"
    short.write_text("quality: rating\nsafe: {kind: label, labels: ['yes', 'no']}\n")
    project = tmp_path / "project.json"
    project.write_text(
        json.dumps(
            {
                "questions": [
                    {"name": "r", "type": "rubric", "scale": 7, "criteria": [{"name": "tone"}]},
                    {"name": "p", "type": "pairwise", "strengths": 3},
                    {"name": "e", "type": "edit"},
                    {"name": "s", "type": "span", "labels": ["hallucination"]},
                    {"name": "m", "type": "multilabel", "options": ["sarcasm"]},
                ]
            }
        )
    )
    got = load_questions(short)
    assert got["quality"].kind == "rating" and got["safe"].labels == ["yes", "no"]
    got = load_questions(project)
    assert got["r"].scale == (1, 7) and got["r"].criteria == ["tone"]
    assert [got[n].kind for n in "pesm"] == ["pairwise", "text", "spans", "multilabel"]
    assert got["m"].labels == ["sarcasm"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("quality: colour\n", "quality.kind"),
        ("- {name: a, kind: label}\n- {name: a, kind: label}\n", "a"),
        ("[1, 2]\n", "[0]"),
        ("{{{\n", None),
        ("safe: {kind: label, labels: [yes, no]}\n", "quote labels"),
    ],
)
def test_bad_questions_files_name_the_place(tmp_path: Path, text: str, where: str | None) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        load_questions(path)
    assert str(path) in str(e.value)
    if where:
        assert where in str(e.value)


@pytest.mark.parametrize(
    ("question", "value", "message"),
    [
        (Question(name="q", kind="rating", scale=(1, 5)), 9, "outside the scale"),
        (Question(name="q", kind="rating"), "five", "must be a number"),
        (Question(name="q", kind="rating"), True, "must be a number"),
        (Question(name="q", kind="label", labels=["a"]), "b", "not one of"),
        (Question(name="q", kind="label"), 1.5, "string or integer"),
        (Question(name="q", kind="rubric", criteria=["tone"]), {"wit": 3}, "unknown rubric"),
        (Question(name="q", kind="ranking"), [1, 1], "twice"),
        (Question(name="q", kind="multilabel"), "a", "must be a list"),
        (Question(name="q", kind="text"), 3, "text answer"),
        (Question(name="q", kind="spans"), [{"start": 5, "end": 99}], "outside message"),
        (Question(name="q", kind="spans"), [{"start": 0, "end": 1, "message": 7}], "message 7"),
        (Question(name="q", kind="pairwise"), {"chosen": [1]}, "string or integer"),
    ],
)
def test_check_refuses_wrong_answers(question: Question, value: object, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        check(question, value, [10, 20])  # type: ignore[arg-type]


def test_check_accepts_the_annotation_apps_stored_answers() -> None:
    pairwise = Question(name="p", kind="pairwise")
    stored = {"chosen": 1, "rejected": 0, "tie": False, "strength": 2, "pair": [0, 1]}
    assert check(pairwise, stored, [5]) == stored
    tie = {"chosen": None, "rejected": None, "tie": True, "strength": None, "pair": [1, 0]}
    assert check(pairwise, tie, [5]) == tie
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert check(Question(name="c", kind="text"), conversation, [5]) == conversation


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (3, "rating"),
        (True, "label"),
        ("yes", "label"),
        ("a long answer\nwith lines", "text"),
        ({"accuracy": 4}, "rubric"),
        ({"chosen": 0, "tie": False}, "pairwise"),
        ({"text": "x", "diff": ""}, "text"),
        (["sarcasm"], "multilabel"),
        ([2, 0, 1], "ranking"),
        ([{"start": 0, "end": 2}], "spans"),
    ],
)
def test_infer(value: object, kind: str) -> None:
    assert infer("q", value).kind == kind  # type: ignore[arg-type]


def test_infer_refuses_what_it_cannot_read() -> None:
    with pytest.raises(AnswerError, match="cannot tell"):
        infer("q", None)


def test_dawid_skene_and_bradley_terry_load_neither_torch_nor_transformers() -> None:
    """crowd-kit declares transformers; datamill installs it without and must not need it."""
    import subprocess
    import sys

    require("crowdkit", "pip install --no-deps crowd-kit")
    code = (
        "import sys\n"
        "from datamill.quality.agreement import AnswerTable\n"
        "from datamill.quality import consensus\n"
        "t = AnswerTable('nominal')\n"
        "for i, (a, b) in enumerate([('x', 'x'), ('y', 'x'), ('y', 'y')]):\n"
        "    t.add(i, 'w1', a); t.add(i, 'w2', b)\n"
        "consensus.dawid_skene(t); consensus.bradley_terry([(0, 1)], 2)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
