"""Consensus of several annotators' answers to one question about one item.

Each aggregator takes the answers (already checked by ``questions.check``) and returns an
:class:`Outcome`: the consensus value, an agreement in [0, 1] and whether that is good
enough (else the item goes to adjudication, with the reason). Agreement means:

- labels and pairwise choices: the share of annotators who gave the consensus label;
- ratings: 1 − (highest − lowest) / scale width, so 1 is unanimous and 0 spans the scale;
- rubrics: the lowest of its criteria's rating agreements;
- label sets and spans: mean Jaccard similarity of each annotator's set with the consensus;
- rankings: Kendall's W over the candidates every annotator ranked;
- texts: mean similarity (difflib ratio) of the chosen text to the others.

Dawid–Skene comes from crowd-kit. Bradley–Terry comes from choix (regularised iterative
Luce spectral ranking): crowd-kit's ``BradleyTerry`` 1.4.2 stops after its second
iteration (it compares the new scores with an alias of themselves), far from the maximum
likelihood; a test here shows the difference.
"""

from __future__ import annotations

import difflib
import itertools
import warnings
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import JsonValue

from datamill.errors import MissingDependency
from datamill.quality.agreement import AnswerTable, kendall_w
from datamill.quality.questions import text_of, vote_key


@dataclass
class Outcome:
    value: JsonValue
    agreement: float | None  # None with a single annotator
    resolved: bool
    reason: str = ""
    details: dict[str, JsonValue] = field(default_factory=dict)


def _judge(
    value: JsonValue, agreement: float, min_agreement: float, **details: JsonValue
) -> Outcome:
    if agreement < min_agreement:
        reason = f"agreement {agreement:.2f} is below {min_agreement:.2f}"
        return Outcome(value, agreement, False, reason, details)
    return Outcome(value, agreement, True, "", details)


def vote(values: Sequence[Hashable], min_agreement: float) -> Outcome:
    """Majority vote; a tie for first place goes to adjudication."""
    counts = Counter(values).most_common()
    top = [label for label, n in counts if n == counts[0][1]]
    votes = {str(label): n for label, n in counts}
    share = counts[0][1] / len(values)
    if len(top) > 1:
        tied = " and ".join(repr(t) for t in top)
        return Outcome(None, share, False, f"tie between {tied}", {"votes": votes})
    return _judge(counts[0][0], share, min_agreement, votes=votes)  # type: ignore[arg-type]


def posterior_vote(
    values: Sequence[Hashable], label: Hashable, posterior: float, min_agreement: float
) -> Outcome:
    """Dawid–Skene's label for the item: its posterior breaks ties, but the share of
    annotators who gave it must still reach ``min_agreement``."""
    votes = {str(k): n for k, n in Counter(values).most_common()}
    share = sum(v == label for v in values) / len(values)
    return _judge(label, share, min_agreement, votes=votes, posterior=round(posterior, 4))  # type: ignore[arg-type]


def rating(
    values: Sequence[float], scale: tuple[float, float], min_agreement: float, robust: str
) -> Outcome:
    """The median, or the 20%-trimmed mean, of numeric ratings."""
    arr = np.sort(np.asarray(values, dtype=float))
    cut = int(0.2 * len(arr))  # as scipy.stats.trim_mean(arr, 0.2)
    value = float(np.median(arr) if robust == "median" else arr[cut : len(arr) - cut].mean())
    width = scale[1] - scale[0]
    spread = float(arr.max() - arr.min())
    agreement = 1.0 - spread / width if width > 0 else 1.0
    return _judge(value, agreement, min_agreement, spread=spread)


def rubric(
    values: Sequence[dict[str, float]],
    scale: tuple[float, float],
    min_agreement: float,
    robust: str,
) -> Outcome:
    criteria = sorted({c for v in values for c in v})
    per = {c: rating([v[c] for v in values if c in v], scale, 0.0, robust) for c in criteria}
    worst = min(criteria, key=lambda c: per[c].agreement or 0.0)
    agreement = per[worst].agreement or 0.0
    out = _judge({c: o.value for c, o in per.items()}, agreement, min_agreement)
    out.details = {"by_criterion": {c: o.agreement for c, o in per.items()}}
    if not out.resolved:
        out.reason += f" on '{worst}'"
    return out


def label_set(values: Sequence[frozenset[Hashable]], min_agreement: float) -> Outcome:
    """Members chosen by more than half the annotators; exactly half is a tie."""
    counts = Counter(x for v in values for x in v)
    half = len(values) / 2
    tied = sorted(str(x) for x, n in counts.items() if n == half)
    chosen = frozenset(x for x, n in counts.items() if n > half)
    agreement = float(np.mean([_jaccard(v, chosen) for v in values]))
    if tied:
        return Outcome(None, agreement, False, f"tie on {', '.join(tied)}")
    return _judge(sorted(chosen, key=str), agreement, min_agreement)  # type: ignore[arg-type]


def spans(values: Sequence[list[dict[str, JsonValue]]], min_agreement: float) -> Outcome:
    """Characters highlighted (with the same label) by more than half the annotators,
    merged back into spans."""
    marked = [
        frozenset(
            (s.get("message", -1), s.get("label"), i)
            for s in answer
            for i in range(int(s["start"]), int(s["end"]))  # type: ignore[arg-type]
        )
        for answer in values
    ]
    out = label_set(marked, min_agreement)
    chars = sorted(out.value or [], key=lambda t: (str(t[0]), str(t[1]), t[2]))  # type: ignore[union-attr, index]
    merged: list[dict[str, JsonValue]] = []
    for message, label, i in chars:  # type: ignore[misc]
        last = merged[-1] if merged else None
        if last and (last["message"], last["label"], last["end"]) == (message, label, i):
            last["end"] = i + 1
        else:
            merged.append({"message": message, "label": label, "start": i, "end": i + 1})
    out.value = [{k: v for k, v in s.items() if v is not None} for s in merged]  # type: ignore[misc]
    return out


def ranking(values: Sequence[list[Hashable]], min_agreement: float) -> Outcome:
    """Bradley–Terry scores from every annotator's ranking broken into pairs."""
    objects = sorted({x for v in values for x in v}, key=str)
    index = {x: i for i, x in enumerate(objects)}
    pairs = [(index[a], index[b]) for v in values for a, b in itertools.combinations(v, 2)]
    scores = bradley_terry(pairs, len(objects))
    order = sorted(range(len(objects)), key=lambda i: -scores[i])
    common = [x for x in objects if all(x in v for v in values)]
    ranks = np.array([[list(v).index(x) for x in common] for v in values], dtype=float)
    w = kendall_w(ranks)
    details: dict[str, JsonValue] = {
        "scores": {str(objects[i]): round(scores[i], 4) for i in order}
    }
    return _judge([objects[i] for i in order], 1.0 if w is None else w, min_agreement, **details)  # type: ignore[misc]


def text(values: Sequence[JsonValue], min_agreement: float) -> Outcome:
    """The answer closest to all the others (the medoid)."""
    texts = [text_of(v) for v in values]
    sim = np.eye(len(texts))
    for i, j in itertools.combinations(range(len(texts)), 2):
        sim[i, j] = sim[j, i] = difflib.SequenceMatcher(None, texts[i], texts[j]).ratio()
    best = int(np.argmax(sim.sum(axis=1)))
    agreement = float((sim[best].sum() - 1.0) / (len(texts) - 1))
    return _judge(values[best], agreement, min_agreement, chosen=best)


def candidate_pairs(kind: str, value: JsonValue) -> list[tuple[int, int]]:
    """(better, worse) candidate indices in one pairwise or ranking answer; a tie, or a
    choice that names no candidate index, gives none. ``"A"``/``"B"`` are the first and
    second candidates."""
    if kind == "ranking" and isinstance(value, list):
        order = [v for v in value if isinstance(v, int)]
        return list(itertools.combinations(order, 2)) if len(order) == len(value) else []
    if kind != "pairwise":
        return []
    if isinstance(value, dict) and isinstance(value.get("chosen"), int):
        if isinstance(value.get("rejected"), int):
            return [(value["chosen"], value["rejected"])]  # type: ignore[list-item]
        return []
    side = {"A": 0, "B": 1}.get(vote_key(value))  # type: ignore[arg-type]
    return [] if side is None else [(side, 1 - side)]


@dataclass
class Strength:
    name: str
    score: float  # Bradley–Terry log-strength, centred on 0
    wins: int
    losses: int


def strengths(wins: Counter[tuple[str, str]]) -> list[Strength]:
    """Bradley–Terry over (winner, loser) counts, strongest first."""
    names = sorted({n for pair in wins for n in pair})
    index = {n: i for i, n in enumerate(names)}
    pairs = [(index[w], index[lo]) for (w, lo), n in wins.items() for _ in range(n)]
    scores = bradley_terry(pairs, len(names))
    won, lost = Counter[str](), Counter[str]()
    for (w, lo), n in wins.items():
        won[w] += n
        lost[lo] += n
    out = [Strength(n, round(scores[index[n]], 4), won[n], lost[n]) for n in names]
    return sorted(out, key=lambda s: -s.score)


def bradley_terry(pairs: Sequence[tuple[int, int]], n: int, alpha: float = 0.01) -> list[float]:
    """Log-strengths of ``n`` objects from (winner, loser) pairs, centred on 0. The small
    ``alpha`` regularisation keeps objects that never won (or never lost) finite."""
    if n < 2 or not pairs:
        return [0.0] * n
    try:
        import choix
    except ImportError:
        raise MissingDependency("choix", "pip install 'datamill[quality]'") from None
    est = choix.ilsr_pairwise(n, list(pairs), alpha=alpha)
    return [float(x) for x in est - est.mean()]


@dataclass
class Posteriors:
    """Dawid–Skene's answer for each item, in sorted arrays (compact for many items)."""

    items: np.ndarray
    codes: np.ndarray
    probability: np.ndarray
    table: AnswerTable

    def get(self, item: int) -> tuple[Hashable, float] | None:
        i = int(np.searchsorted(self.items, item))
        if i == len(self.items) or self.items[i] != item:
            return None
        return self.table.label(float(self.codes[i])), float(self.probability[i])  # type: ignore[return-value]


def dawid_skene(table: AnswerTable, n_iter: int = 100) -> Posteriors:
    """Dawid–Skene over every answer of a nominal question: for each item, the most
    probable label and its posterior. Each annotator gets a confusion matrix, so a careless
    one counts for less than a careful one."""
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError:
        raise MissingDependency(
            "crowd-kit", "pip install 'datamill[quality]' && pip install --no-deps crowd-kit"
        ) from None
    frame = pd.DataFrame(
        {"task": table.items, "worker": table.raters, "label": table.values.astype(np.int64)}
    )
    with warnings.catch_warnings():  # crowd-kit uses pandas keywords pandas 3 deprecates
        warnings.filterwarnings("ignore", module="crowdkit")
        probas = DawidSkene(n_iter=n_iter).fit(frame).probas_.sort_index()
    matrix = probas.to_numpy()
    best = matrix.argmax(axis=1)
    return Posteriors(
        items=probas.index.to_numpy(dtype=np.int64),
        codes=probas.columns.to_numpy(dtype=np.int64)[best],
        probability=matrix[np.arange(len(best)), best],
        table=table,
    )


def _jaccard(a: frozenset[Hashable], b: frozenset[Hashable]) -> float:
    return 1.0 if not a and not b else len(a & b) / len(a | b)
