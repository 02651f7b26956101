"""What a dataset version holds: check outcomes, tasks and domains, without building records."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from datamill.store import Dataset


@dataclass
class CheckCounts:
    passed: int = 0
    failed: int = 0
    no_verdict: int = 0


@dataclass
class VersionSummary:
    records: int = 0
    checks: dict[str, CheckCounts] = field(default_factory=dict)
    domains: Counter[str] = field(default_factory=Counter)
    tasks: Counter[str] = field(default_factory=Counter)


def summarise(dataset: Dataset, version: int | None = None) -> VersionSummary:
    summary = VersionSummary()
    for raw in dataset.column("checks", version):
        summary.records += 1
        for name, result in json.loads(str(raw)).items():
            counts = summary.checks.setdefault(name, CheckCounts())
            if result["passed"] is True:
                counts.passed += 1
            elif result["passed"] is False:
                counts.failed += 1
            else:
                counts.no_verdict += 1
    summary.domains.update(str(d) for d in dataset.column("domain", version) if d is not None)
    summary.tasks.update(str(t) for t in dataset.column("task", version) if t is not None)
    return summary
