"""The route stage: a new version with a routing decision on every record.

Two passes over the version keep memory flat. The first decides every record and keeps
only the ``budget`` highest (priority, tie-break) keys of those that need a human; the
second decides again (decisions are pure functions of record and policy), sends to
humans those whose key made the cut, and gives the rest the policy's ``over_budget``
outcome. Ties in priority are broken by a seeded hash of the record id, so that what the
budget leaves out among equals is a random sample, not the end of the file. A policy with a
``calibration`` is first adjusted to the judge's measured figures (``route/calibration.py``);
the version's params keep the figures and whether the judge was trusted.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict

from pydantic import JsonValue

from datamill.records import Record
from datamill.route.calibration import apply_calibration
from datamill.route.decide import Verdict, audit_draw, decide, load_packs
from datamill.route.policy import Policy
from datamill.store import Dataset, Version

Key = tuple[float, float]


def _key(policy: Policy, record: Record, verdict: Verdict) -> Key:
    return round(verdict.priority, 9), audit_draw(policy.audit.seed + 1, record.id)


def _cutoff(keys: Iterable[Key], budget: int | None) -> tuple[Key | None, int]:
    """The lowest key within the budget (None: every human item fits) and how many want one."""
    kept: list[Key] = []
    wanted = 0
    for key in keys:
        wanted += 1
        if budget is None:
            continue
        if len(kept) < budget:
            heapq.heappush(kept, key)
        elif budget and key > kept[0]:
            heapq.heapreplace(kept, key)
    if budget is None or wanted <= budget:
        return None, wanted
    return (kept[0] if kept else (float("inf"), 0.0)), wanted


def route_dataset(
    dataset: Dataset,
    policy: Policy,
    version: int | None = None,
    advance: Callable[[], None] | None = None,
) -> Version:
    source = dataset.version(version)
    applied = apply_calibration(policy)
    policy = applied.policy
    packs = load_packs(policy.pack_paths())
    by = policy.ident()

    def verdicts() -> Iterator[tuple[Record, Verdict]]:
        for record in dataset.records(source.version):
            yield record, decide(record, policy, packs)

    cutoff, wanted = _cutoff(
        (_key(policy, r, v) for r, v in verdicts() if v.outcome == "human"), policy.budget
    )
    counts: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    projects: Counter[str] = Counter()
    params: dict[str, JsonValue] = {"policy": by, "spec": policy.model_dump(mode="json")}
    if applied.figures is not None:
        params["calibration"] = {
            **asdict(applied.figures),
            "trusted": not applied.distrusted,
            "why": applied.why,
        }
    with dataset.writer("route", params, parent=source.version) as w:
        admitted = 0
        for record, verdict in verdicts():
            if verdict.outcome == "human":
                within = cutoff is None or _key(policy, record, verdict) >= cutoff
                if within and (policy.budget is None or admitted < policy.budget):
                    admitted += 1
                else:
                    verdict = _over_budget(policy, verdict)
            counts[verdict.outcome] += 1
            counts["audit"] += verdict.audit
            if verdict.outcome == "human":
                projects[str(verdict.project)] += 1
            rules.update(verdict.fired)
            w.write(record.with_decision("route", verdict.decision(by)))
            if advance is not None:
                advance()
        w.counts.update({k: counts[k] for k in ("accept", "reject", "human", "audit")})
        w.counts["over_budget"] = wanted - admitted
        w.stats = {"rules": dict(rules), "projects": dict(projects), "wanted_human": wanted}
    assert w.committed is not None
    return w.committed


def _over_budget(policy: Policy, verdict: Verdict) -> Verdict:
    """What an item that needed a human becomes when the budget went to higher priorities."""
    outcome = "accept" if verdict.audit else policy.over_budget
    why = (
        f"over budget: needed a human, but the budget of {policy.budget} went to higher priorities"
    )
    return Verdict(
        outcome, [*verdict.reasons, why], verdict.risk, verdict.priority, fired=verdict.fired
    )


def human_records(records: Iterable[Record], project: str | None = None) -> Iterator[Record]:
    """The records routed to humans (to ``project``, if given), in order, for the
    annotation app to take; with their decision's expertise tags and k in
    ``record.decisions["route"].details``."""
    for record in records:
        decision = record.decisions.get("route")
        if decision is None or decision.outcome != "human":
            continue
        if project is None or decision.details.get("project") == project:
            yield record
