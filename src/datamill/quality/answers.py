"""Annotations gathered from a dataset version: checked, grouped, and summarised.

``answers_of`` checks one record's annotations and groups them by question. A
:class:`Survey` is the first of resolve's two passes over a version: it checks every
record and keeps only compact ``(item, annotator, value)`` tables (``agreement.AnswerTable``)
of the questions that have a scalar value — what Dawid–Skene and the agreement statistics
need across records. Record text is never kept, so memory grows with the number of
answers, by a few bytes each, not with the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from pydantic import JsonValue

from datamill.errors import InputError
from datamill.quality.agreement import (
    AnnotatorQuality,
    AnswerTable,
    annotator_quality,
    krippendorff_alpha,
    mean_pairwise_cohen,
    table_fleiss_kappa,
)
from datamill.quality.consensus import candidate_pairs
from datamill.quality.questions import AnswerError, Question, check, infer, vote_key
from datamill.records import Record

TABLED = ("label", "pairwise", "rating", "rubric", "multilabel")


def answers_of(
    record: Record, questions: dict[str, Question], where: str, learn: bool = False
) -> dict[str, dict[str, JsonValue]]:
    """{question: {annotator: value}}; an annotator's latest answer to a question counts.

    A question not in ``questions`` is an error, unless ``learn`` is set: then its kind is
    inferred from the value and added. Errors name ``where`` and the record id."""
    lengths = [len(m.content or "") for m in record.messages]
    latest: dict[tuple[str, str], tuple[object, JsonValue]] = {}
    for i, ann in enumerate(record.annotations):
        field_ = f"annotations[{i}]"
        try:
            question = questions.get(ann.question)
            if question is None:
                if not learn:
                    known = ", ".join(sorted(questions)) or "none"
                    raise AnswerError(f"unknown question '{ann.question}' (known: {known})")
                question = questions[ann.question] = infer(ann.question, ann.value)
            _widen(question, ann.value)
            value = check(question, ann.value, lengths)
        except AnswerError as e:
            raise InputError(where, None, field_, f"record {record.id}: {e}") from None
        key = (ann.question, ann.annotator)
        if key not in latest or latest[key][0] <= ann.created_at:  # type: ignore[operator]
            latest[key] = (ann.created_at, value)
    out: dict[str, dict[str, JsonValue]] = {}
    for (question_name, annotator), (_, value) in latest.items():
        out.setdefault(question_name, {})[annotator] = value
    return out


def gold_of(
    record: Record,
    questions: dict[str, Question],
    where: str,
    given: Mapping[str, JsonValue] | None = None,
) -> dict[str, JsonValue]:
    """Gold answers of a record: from ``given`` (record id → {question: answer}, the file
    ``datamill annotate push --gold`` reads) or the record's ``metadata["gold"]``."""
    gold = (given or {}).get(record.id, record.metadata.get("gold"))
    if not isinstance(gold, dict):
        return {}
    lengths = [len(m.content or "") for m in record.messages]
    out = {}
    for name, value in gold.items():
        if name in questions:
            try:
                out[name] = check(questions[name], value, lengths)
            except AnswerError as e:
                where_ = f"metadata.gold.{name}"
                raise InputError(where, None, where_, f"record {record.id}: {e}") from None
    return out


def _widen(question: Question, value: JsonValue) -> None:
    # An inferred label question turns out to hold free text once a long answer shows up.
    if question.inferred and question.kind == "label" and infer("", value).kind == "text":
        question.kind = "text"


@dataclass
class Survey:
    """Pass one over a version: every record checked, scalar answers tabled."""

    questions: dict[str, Question]
    where: str
    learn: bool = True
    gold_answers: Mapping[str, JsonValue] | None = None  # record id → {question: answer}
    records: int = 0
    annotated: int = 0
    tables: dict[str, AnswerTable] = field(default_factory=dict)  # "q" or "q.criterion"
    gold: dict[str, dict[int, float]] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # table key → question name
    # Human comparisons between the models behind a record's candidates: (winner, loser) → n
    model_wins: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Label sets, one row per chosen tag plus a None row per answer (an empty set is an answer)
    _tagged: dict[str, AnswerTable] = field(default_factory=dict)

    def add(self, index: int, record: Record) -> None:
        self.records += 1
        answers = answers_of(record, self.questions, self.where, self.learn)
        self.annotated += bool(answers)
        models = [c.model for c in record.candidates]
        for name, by in answers.items():
            kind = self.questions[name].kind
            for annotator, value in by.items():
                self._table(index, name, annotator, value)
                for better, worse in candidate_pairs(kind, value):
                    named = min(better, worse) >= 0 and max(better, worse) < len(models)
                    pair = (models[better], models[worse]) if named else (None, None)
                    if pair[0] and pair[1] and pair[0] != pair[1]:
                        self.model_wins[pair] += 1  # type: ignore[index]
        for name, value in gold_of(record, self.questions, self.where, self.gold_answers).items():
            for key, v in self._cells(name, value):
                table = self._get(key, self.questions[name])
                self.gold.setdefault(key, {})[index] = table.encode(v)  # type: ignore[arg-type]

    def _table(self, index: int, name: str, annotator: str, value: JsonValue) -> None:
        question = self.questions[name]
        if question.kind == "multilabel":
            tagged = self._tagged.setdefault(name, AnswerTable("nominal"))
            for tag in [None, *value]:  # type: ignore[misc]
                tagged.add(index, annotator, tag)
        for key, v in self._cells(name, value):
            self._get(key, question).add(index, annotator, v)  # type: ignore[arg-type]
            if isinstance(v, float):
                self.low[name] = min(self.low.get(name, v), v)
                self.high[name] = max(self.high.get(name, v), v)

    def _cells(self, name: str, value: JsonValue) -> list[tuple[str, JsonValue]]:
        kind = self.questions[name].kind
        if kind == "rubric":
            return [(f"{name}.{c}", v) for c, v in value.items()]  # type: ignore[union-attr]
        if kind == "pairwise":
            return [(name, vote_key(value))]
        return [(name, value)] if kind in ("label", "rating") else []

    def _get(self, key: str, question: Question) -> AnswerTable:
        if key not in self.tables:
            nominal = question.kind in ("label", "pairwise")
            level = "nominal" if nominal else question.level
            self.tables[key] = AnswerTable(level)  # type: ignore[arg-type]
            self.owner[key] = question.name
        return self.tables[key]

    def finish(self) -> None:
        """Drop tables of questions that turned out to be texts; table label sets by tag."""
        for key in list(self.tables):
            if self.questions[self.owner[key]].kind not in TABLED:
                del self.tables[key]
        for name, tagged in self._tagged.items():
            rows = list(zip(tagged.items, tagged.raters, tagged.values, strict=True))
            answered = sorted({(item, rater) for item, rater, _ in rows})
            for code, tag in enumerate(tagged.categories):
                if tag is None:
                    continue
                chosen = {(item, rater) for item, rater, v in rows if v == code}
                table = self._get(f"{name}[{tag}]", self.questions[name])
                table.level = "nominal"
                for item, rater in answered:
                    table.add(int(item), tagged.annotators[rater], (item, rater) in chosen)
        self._tagged.clear()

    def scale(self, question: Question) -> tuple[float, float]:
        """The declared scale, else the range of answers seen."""
        if question.scale:
            return question.scale
        return self.low.get(question.name, 0.0), self.high.get(question.name, 1.0)


@dataclass
class TableAgreement:
    key: str  # the question, "question.criterion" or "question[tag]"
    question: str
    level: str
    items: int  # items with two or more answers
    answers: int
    annotators: int
    alpha: float | None
    fleiss: float | None
    cohen: float | None
    annotator_quality: list[AnnotatorQuality]


def agreement(survey: Survey, max_cohen_raters: int = 20) -> list[TableAgreement]:
    """Agreement and annotator quality for every table of a finished survey."""
    out = []
    for key, table in sorted(survey.tables.items()):
        _, _, counts = table.value_counts()
        few = len(table.annotators) <= max_cohen_raters  # Cohen's is pairwise: O(raters²)
        low, high = survey.scale(survey.questions[survey.owner[key]])
        tolerance = 0.0 if table.level == "nominal" else (high - low) / 4
        out.append(
            TableAgreement(
                key=key,
                question=survey.owner[key],
                level=table.level,
                items=int((counts.sum(axis=1) >= 2).sum()),
                answers=len(table),
                annotators=len(table.annotators),
                alpha=krippendorff_alpha(table),
                fleiss=table_fleiss_kappa(table),
                cohen=mean_pairwise_cohen(table) if few else None,
                annotator_quality=annotator_quality(
                    table, consensus_of(table), survey.gold.get(key), tolerance=tolerance
                ),
            )
        )
    return out


def consensus_of(table: AnswerTable) -> dict[int, float]:
    """Per item, the plain majority (nominal; ties left out) or the median."""
    if table.level == "nominal":
        items, domain, counts = table.value_counts()
        top = counts.max(axis=1)
        clear = (counts == top[:, None]).sum(axis=1) == 1
        winners = domain[counts.argmax(axis=1)][clear]
        return dict(zip(items[clear].tolist(), winners.tolist(), strict=True))
    order = np.lexsort((table.values, table.items))
    items, values = table.items[order], table.values[order]
    keys, start, count = np.unique(items, return_index=True, return_counts=True)
    median = (values[start + (count - 1) // 2] + values[start + count // 2]) / 2
    return dict(zip(keys.tolist(), median.tolist(), strict=True))
