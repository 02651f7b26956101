"""The resolve stage: human answers → one decision per record, or a reviewer's queue.

It reads a dataset version whose records carry annotations and writes a new version where
each annotated record has ``decisions["resolve"]``::

    Decision(outcome="resolved" | "adjudicate", by="dawid_skene+median"…, reason,
             details={"questions": {name: {kind, method, value, agreement, annotators,
                                           status, reason, …}},
                      "annotators": n, "agreement": lowest question agreement})

``value`` is the consensus in the answers' own form (a pairwise consensus is one of the
annotators' stored answers). A record one of whose questions lacks consensus (a tie, or
agreement below ``min_agreement``) gets outcome "adjudicate" and waits in
:func:`adjudication_queue`; :func:`adjudicate` records a reviewer's answer, who gave it and
why. Records without annotations pass through unchanged; a question a reviewer already
decided keeps the reviewer's answer when the version is resolved again.

Two passes over the version, so records are never held in memory: Dawid–Skene needs every
label of a question across records, so pass one checks every record and keeps only compact
``(item, annotator, label)`` tables (``quality.answers.Survey``, about 30 bytes an answer);
pass two streams the records again and writes. A malformed annotation stops pass one,
before anything is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import JsonValue

from datamill.adjudication import Verdict, adjudicate, adjudicate_dataset, adjudication_queue
from datamill.quality import consensus as agg
from datamill.quality.answers import Survey, TableAgreement, agreement, answers_of
from datamill.quality.lineage import project_questions
from datamill.quality.questions import Question, vote_key
from datamill.records import Decision, Record
from datamill.store import Dataset, Version

__all__ = [  # adjudication lives in its own module; its functions are part of this stage's API
    "Settings",
    "Summary",
    "Verdict",
    "adjudicate",
    "adjudicate_dataset",
    "adjudication_queue",
    "resolve_dataset",
    "resolve_record",
    "survey",
]

Method = Literal["auto", "majority", "dawid_skene"]


@dataclass(frozen=True)
class Settings:
    method: Method = "auto"  # for labels; "auto": Dawid–Skene from ds_min_items items on
    min_agreement: float = 0.5
    min_annotators: int = 1
    robust: Literal["median", "trimmed_mean"] = "median"  # for ratings
    ds_min_items: int = 50


@dataclass
class Summary:
    version: Version
    resolved: int
    adjudicate: int
    unannotated: int
    methods: dict[str, str]
    agreement: list[TableAgreement]
    open_questions: Counter[str]  # how many records each question sends to adjudication
    models: list[agg.Strength]  # Bradley–Terry over the models behind compared candidates
    adjudicated: int = 0  # records whose reviewer's answers were kept


def survey(
    dataset: Dataset,
    version: int | None = None,
    questions: dict[str, Question] | None = None,
    gold: Mapping[str, JsonValue] | None = None,
) -> Survey:
    """Pass one: check every record's annotations and table the scalar answers.

    Without ``questions``, the questions of the annotation projects pulled into the
    version's lineage are used; without those, kinds are inferred from the answers."""
    source = dataset.version(version)
    questions = questions or project_questions(dataset, source.version)
    where = f"{dataset.path} version {source.version}"
    found = Survey(dict(questions), where, not questions, gold_answers=gold)
    for index, record in enumerate(dataset.records(source.version)):
        found.add(index, record)
    found.finish()
    return found


def resolve_dataset(
    dataset: Dataset,
    version: int | None = None,
    questions: dict[str, Question] | None = None,
    settings: Settings = Settings(),
) -> Summary:
    """Write a new version with a resolve decision on every annotated record."""
    source = dataset.version(version)
    found = survey(dataset, source.version, questions)
    methods = {name: _method(q, found, settings) for name, q in found.questions.items()}
    posteriors = {
        name: agg.dawid_skene(found.tables[name])
        for name, method in methods.items()
        if method == "dawid_skene" and name in found.tables
    }
    params: dict[str, JsonValue] = {
        **asdict(settings),
        "questions": {
            n: q.model_dump(mode="json", exclude_none=True) for n, q in found.questions.items()
        },
    }
    counts = {"resolved": 0, "adjudicate": 0, "adjudicated": 0}
    open_questions: Counter[str] = Counter()
    with dataset.writer("resolve", params, parent=source.version) as w:
        for index, record in enumerate(dataset.records(source.version)):
            out = resolve_record(record, index, found, methods, posteriors, settings)
            if out is not record:
                decision = out.decisions["resolve"]
                counts[decision.outcome] += 1
                results: dict[str, dict[str, JsonValue]] = decision.details["questions"]  # type: ignore[assignment]
                open_questions.update(n for n, r in results.items() if r["status"] == "adjudicate")
            w.write(out)
        w.counts.update(counts)
        table = agreement(found)
        w.stats = {
            "methods": methods,  # type: ignore[dict-item]
            "alpha": {t.key: t.alpha for t in table},  # type: ignore[dict-item]
            "adjudicate_by_question": dict(open_questions),  # type: ignore[dict-item]
        }
        models = agg.strengths(found.model_wins)
        if models:
            w.stats["models"] = {m.name: asdict(m) for m in models}  # type: ignore[misc]
    assert w.committed is not None
    return Summary(
        w.committed,
        counts["resolved"],
        counts["adjudicate"],
        found.records - found.annotated,
        methods,
        table,
        open_questions,
        models,
        counts["adjudicated"],
    )


def _method(question: Question, found: Survey, settings: Settings) -> str:
    kind = question.kind
    if kind in ("label", "pairwise"):
        if settings.method != "auto":
            return settings.method
        table = found.tables.get(question.name)
        items = 0 if table is None else int((table.value_counts()[2].sum(axis=1) >= 2).sum())
        return "dawid_skene" if items >= settings.ds_min_items else "majority"
    return {
        "rating": settings.robust,
        "rubric": settings.robust,
        "multilabel": "majority",
        "spans": "majority",
        "ranking": "bradley_terry",
        "text": "medoid",
        "comment": "collected",
    }[kind]


def resolve_record(
    record: Record,
    index: int,
    found: Survey,
    methods: Mapping[str, str],
    posteriors: Mapping[str, agg.Posteriors],
    settings: Settings,
) -> Record:
    """The record with its resolve decision (unchanged if it has no annotations)."""
    answers = answers_of(record, found.questions, found.where)
    if not answers:
        return record
    results: dict[str, JsonValue] = {}
    for name in sorted(answers):
        question, by = found.questions[name], answers[name]
        outcome = _consensus(question, index, by, found, methods[name], posteriors, settings)
        results[name] = {
            **outcome.details,
            "kind": question.kind,
            "method": methods[name],
            "value": outcome.value,
            "agreement": outcome.agreement,
            "annotators": len(by),
            "status": "resolved" if outcome.resolved else "adjudicate",
            "reason": outcome.reason,
        }
    prior = record.decisions.get("resolve")
    for name, result in (prior.details.get("questions") or {} if prior else {}).items():  # type: ignore[union-attr]
        if name in results and result.get("status") == "adjudicated":  # type: ignore[union-attr]
            results[name] = result
    return record.with_decision("resolve", _decision(results, answers, methods))


def _consensus(
    question: Question,
    index: int,
    by: dict[str, JsonValue],
    found: Survey,
    method: str,
    posteriors: Mapping[str, agg.Posteriors],
    settings: Settings,
) -> agg.Outcome:
    values = [by[a] for a in sorted(by)]
    kind, floor = question.kind, settings.min_agreement
    if kind == "comment":
        return agg.Outcome(values, None, True)  # type: ignore[arg-type]
    if len(values) < settings.min_annotators:
        why = f"{len(values)} annotator(s), {settings.min_annotators} needed"
        return agg.Outcome(None, None, False, why)
    if len(values) == 1:
        return agg.Outcome(values[0], None, True, "one annotator")
    if kind in ("label", "pairwise"):
        keys = [vote_key(v) for v in values]
        fitted = posteriors.get(question.name)
        post = fitted.get(index) if fitted is not None else None
        out = agg.posterior_vote(keys, *post, floor) if post else agg.vote(keys, floor)  # type: ignore[arg-type]
        if out.value is not None and kind == "pairwise":
            out.value = next(
                (v for v, k in zip(values, keys, strict=True) if k == out.value), out.value
            )
        return out
    if kind == "rating":
        return agg.rating(values, found.scale(question), floor, method)  # type: ignore[arg-type]
    if kind == "rubric":
        return agg.rubric(values, found.scale(question), floor, method)  # type: ignore[arg-type]
    if kind == "multilabel":
        return agg.label_set([frozenset(v) for v in values], floor)  # type: ignore[arg-type]
    if kind == "spans":
        return agg.spans(values, floor)  # type: ignore[arg-type]
    if kind == "ranking":
        return agg.ranking(values, floor)  # type: ignore[arg-type]
    return agg.text(values, floor)


def _decision(
    results: dict[str, JsonValue],
    answers: dict[str, dict[str, JsonValue]],
    methods: Mapping[str, str],
) -> Decision:
    pending = [n for n, r in results.items() if r["status"] == "adjudicate"]  # type: ignore[index, call-overload]
    scores = [r["agreement"] for r in results.values() if r["agreement"] is not None]  # type: ignore[index, call-overload]
    used = sorted({methods[n] for n in results if methods[n] != "collected"}) or ["collected"]
    details: dict[str, JsonValue] = {
        "questions": results,
        "annotators": len({a for by in answers.values() for a in by}),
        "agreement": min(scores) if scores else None,  # type: ignore[type-var]
    }
    if pending:
        reasons = "; ".join(f"{n}: {results[n]['reason']}" for n in pending)  # type: ignore[index, call-overload]
        return Decision(outcome="adjudicate", by="+".join(used), reason=reasons, details=details)
    reviewers = sorted({r["reviewer"] for r in results.values() if "reviewer" in r})  # type: ignore[operator, index, call-overload]
    if reviewers:
        by = "+".join(f"reviewer:{r}" for r in reviewers)
        return Decision(outcome="adjudicated", by=by, reason="kept from review", details=details)
    return Decision(outcome="resolved", by="+".join(used), details=details)
