"""Everything a report shows about a dataset, gathered in streaming passes.

Parts that need another stage's results (routing, annotations, consensus, the judge) or an
optional library (agreement statistics) are left out with a note when they are absent, so
a report of freshly generated data and one of a fully annotated set come from one code.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datamill.errors import DatamillError
from datamill.ledger import Ledger, Rates, build_ledger
from datamill.quality.diversity import Encoder, Profile, Profiler
from datamill.store import Dataset, Version

MAX_SCORES = 10_000  # scores kept per check for its histogram (a reservoir sample)


@dataclass
class CheckSummary:
    passed: int = 0
    failed: int = 0
    no_verdict: int = 0
    scores: list[float] = field(default_factory=list)
    seen: int = 0  # scores seen, for the reservoir


@dataclass
class ReportData:
    name: str
    path: str
    version: Version
    versions: list[Version]
    records: int = 0
    checks: dict[str, CheckSummary] = field(default_factory=dict)
    decisions: dict[str, Counter[str]] = field(default_factory=dict)
    annotations: Counter[str] = field(default_factory=Counter)  # by project / question
    annotators: int = 0
    diversity: list[tuple[Version, Profile]] = field(default_factory=list)
    ledger: Ledger | None = None
    agreement: list[dict[str, Any]] = field(default_factory=list)
    calibration: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _summarise(ds: Dataset, data: ReportData) -> None:
    rng = random.Random(0)
    annotators: set[str] = set()
    for record in ds.records(data.version.version):
        data.records += 1
        for name, result in record.checks.items():
            summary = data.checks.setdefault(name, CheckSummary())
            if result.passed is True:
                summary.passed += 1
            elif result.passed is False:
                summary.failed += 1
            else:
                summary.no_verdict += 1
            if result.score is not None:
                summary.seen += 1
                if len(summary.scores) < MAX_SCORES:
                    summary.scores.append(result.score)
                elif (j := rng.randrange(summary.seen)) < MAX_SCORES:
                    summary.scores[j] = result.score
        for stage, decision in record.decisions.items():
            data.decisions.setdefault(stage, Counter())[decision.outcome] += 1
        for a in record.annotations:
            data.annotations[f"{a.project or 'no project'} / {a.question}"] += 1
            if len(annotators) < 100_000:
                annotators.add(a.annotator)
    data.annotators = len(annotators)


def _agreement(ds: Dataset, data: ReportData) -> None:
    """Agreement per question and the judge's calibration against human answers."""
    try:
        from datamill.quality.answers import agreement
        from datamill.quality.calibration import calibrate_pairwise, calibrate_ratings
        from datamill.quality.judged import pairwise_columns, rating_columns
        from datamill.resolve import survey as survey_of

        # resolve's own first pass: the question kinds come from the projects pulled into
        # the version, so this table is the one `datamill agreement` prints.
        survey = survey_of(ds, data.version.version)
        for row in agreement(survey):
            data.agreement.append(
                {
                    "question": row.key,
                    "level": row.level,
                    "items": row.items,
                    "answers": row.answers,
                    "annotators": row.annotators,
                    "alpha": row.alpha,
                    "fleiss": row.fleiss,
                    "cohen": row.cohen,
                    "flagged": [q.annotator for q in row.annotator_quality if q.flagged],
                }
            )
        for name, question in survey.questions.items():
            records = ds.records(data.version.version)
            if question.kind == "rating":
                judge, human = rating_columns(records, name)
                if len(judge) >= 3:
                    data.calibration.append({"question": name} | calibrate_ratings(judge, human))
            elif question.kind == "pairwise":
                cols = pairwise_columns(records, name)
                if len(cols.judge) >= 2:
                    found = calibrate_pairwise(cols.judge, cols.human, cols.forward, cols.reverse)
                    data.calibration.append({"question": name} | found.as_dict())
    except (ImportError, DatamillError, ValueError) as e:
        data.notes.append(f"agreement and calibration left out: {e}")


def collect(
    ds: Dataset,
    version: int | None = None,
    rates: Rates | None = None,
    encoder: Encoder | None = None,
    sample: int = 500,
) -> ReportData:
    """What the report shows: counts, checks, decisions, annotations, agreement, calibration,
    diversity of every version (same seed and sample, so they compare) and the ledger."""
    manifest = ds.manifest()
    current = ds.version(version)
    versions = [v for v in manifest.versions if v.version <= current.version]
    data = ReportData(manifest.name, str(ds.path), current, versions)
    _summarise(ds, data)
    if data.annotations:
        _agreement(ds, data)
    else:
        data.notes.append("no annotations yet: no agreement or calibration")
    for v in versions:
        profiler = Profiler(sample=sample, encoder=encoder if v == current else None)
        data.diversity.append((v, profiler.add_all(ds.records(v.version)).profile()))
    data.ledger = build_ledger(ds.records(current.version), rates)
    return data
