"""The check and filter stages: each reads a dataset version and writes new versions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from datamill.checks.base import Check, chain, close_checks
from datamill.checks.rules import Rule
from datamill.records import CheckResult
from datamill.store import Dataset, Version


async def check_dataset(
    dataset: Dataset,
    checks: Sequence[Check],
    specs: list[dict[str, Any]],
    version: int | None = None,
    advance: Callable[[], None] | None = None,
) -> Version:
    """A new version with every check's result on every record; nothing is dropped."""
    source = dataset.version(version)
    failed: Counter[str] = Counter()
    try:
        with dataset.writer("check", {"checks": specs}, parent=source.version) as w:  # type: ignore[dict-item]
            async for record in chain(dataset.records(source.version), checks):
                for check in checks:
                    result = record.checks.get(check.name)
                    if result is not None and result.passed is False:
                        failed[check.name] += 1
                w.write(record)
                if advance is not None:
                    advance()
            w.counts.update({f"failed_{name}": n for name, n in failed.items()})
    finally:
        await close_checks(checks)
    assert w.committed is not None
    return w.committed


def filter_dataset(
    dataset: Dataset,
    rules: Sequence[Rule],
    rejected: Dataset,
    version: int | None = None,
) -> tuple[Version, Version]:
    """Split a version: kept records into ``dataset``, rejected ones (with reasons) into
    ``rejected``. Each record gets a ``filter`` result saying which rules it broke."""
    source = dataset.version(version)
    params = {
        "rules": [r.text for r in rules],
        "source": str(dataset.path),
        "version": source.version,
    }
    reasons: Counter[str] = Counter()
    with (
        dataset.writer("filter", params, parent=source.version) as keep,
        rejected.writer("rejected", params, parent=None) as drop,
    ):
        for record in dataset.records(source.version):
            broken = {rule.text: why for rule in rules if (why := rule.reason(record)) is not None}
            reasons.update(broken.keys())
            verdict = CheckResult(passed=not broken, details={"reasons": list(broken.values())})
            (drop if broken else keep).write(record.with_check("filter", verdict))
        keep.counts["rejected"] = drop.counts["records"]
        drop.stats = keep.stats = {"rejected_by": dict(reasons)}
    assert keep.committed is not None and drop.committed is not None
    return keep.committed, drop.committed
