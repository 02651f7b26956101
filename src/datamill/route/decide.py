"""One record's routing verdict under a policy, before the human budget is spent.

Every rule that fires is a reason. A reject rule wins over a human one, and a human one
over the policy's default: a record that is wrong for certain needs no human to say so.
A record of a domain whose risk level calls for experts goes to humans with the domain
pack's expertise tags. Priority is uncertainty times the risk level's weight.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import get_args

from pydantic import JsonValue

from datamill.generate.packs import DomainPack, builtin_packs, load_pack
from datamill.records import CheckResult, Decision, Record
from datamill.route.policy import Level, Outcome, Policy, Rule

_MISSING = object()


@dataclass
class Verdict:
    outcome: Outcome
    reasons: list[str]
    risk: Level
    priority: float = 0.0
    project: str | None = None
    expertise: list[str] = field(default_factory=list)
    k: int = 0
    audit: bool = False
    fired: list[str] = field(default_factory=list)  # names of the rules that fired

    def decision(self, by: str) -> Decision:
        details: dict[str, JsonValue] = {
            "project": self.project,
            "expertise": list(self.expertise),
            "k": self.k,
            "priority": round(self.priority, 6),
            "audit": self.audit,
            "risk": self.risk,
            "rules": list(self.fired),
        }
        return Decision(
            outcome=self.outcome, by=by, reason="; ".join(self.reasons), details=details
        )


def load_packs(paths: Iterable[str | object] = ()) -> dict[str, DomainPack]:
    """Built-in domain packs and the given pack files, by domain name."""
    packs = [load_pack(name) for name in builtin_packs()] + [load_pack(str(p)) for p in paths]
    return {pack.name: pack for pack in packs}


def audit_draw(seed: int, record_id: str) -> float:
    """A uniform number in [0, 1) fixed by the seed and the record, whatever the order."""
    digest = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def lookup(result: CheckResult, path: str) -> object:
    """A field of a check result: ``score``, ``passed`` or ``details.a.b``."""
    if path in ("score", "passed"):
        return getattr(result, path)
    value: object = result.details
    for part in path.split(".")[1:]:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def fires(rule: Rule, name: str, result: CheckResult) -> tuple[float, str] | None:
    """Whether ``rule`` fires on check ``name``'s result: the uncertainty it carries and
    why (with why the rule was changed, if calibration changed it), or None."""
    hit = _fires(rule, name, result)
    if hit is None or rule.because is None:
        return hit
    return hit[0], f"{hit[1]} ({rule.because})"


def _fires(rule: Rule, name: str, result: CheckResult) -> tuple[float, str] | None:
    where = f"{name}.{rule.field}"
    if rule.failed:
        return (rule.uncertainty, f"{rule.name}: {name} failed") if result.passed is False else None
    value = lookup(result, rule.field)
    if "equals" in rule.model_fields_set:
        if value is _MISSING or value != rule.equals:
            return None
        return rule.uncertainty, f"{rule.name}: {where} is {str(value)[:40]}"
    x = _number(value)
    if x is None:
        return None
    if rule.between is not None:
        lo, hi = rule.between
        if not lo <= x <= hi:
            return None
        half = (hi - lo) / 2
        centrality = 1 - abs(x - (lo + hi) / 2) / half if half else 1.0
        uncertainty = rule.uncertainty * (0.5 + 0.5 * centrality)
        return uncertainty, f"{rule.name}: {where} {x:g} in [{lo:g}, {hi:g}]"
    if rule.above is not None and x > rule.above:
        return rule.uncertainty, f"{rule.name}: {where} {x:g} > {rule.above:g}"
    if rule.below is not None and x < rule.below:
        return rule.uncertainty, f"{rule.name}: {where} {x:g} < {rule.below:g}"
    return None


def _matching(rule: Rule, checks: Mapping[str, CheckResult]) -> list[str]:
    return [name for name in checks if any(fnmatchcase(name, p) for p in rule.checks)]


def risk_of(record: Record, packs: Mapping[str, DomainPack]) -> tuple[Level, list[str]]:
    """The record's risk level and expertise tags: from its domain's pack, else from the
    ``risk_level`` its generator noted; low when neither is known."""
    pack = packs.get(record.domain or "")
    if pack is not None:
        return pack.risk_level, list(pack.experts)
    noted = record.metadata.get("risk_level")
    levels: tuple[Level, ...] = get_args(Level)
    return (noted if noted in levels else "low"), []  # type: ignore[return-value]


def decide(record: Record, policy: Policy, packs: Mapping[str, DomainPack]) -> Verdict:
    """The verdict on ``record`` before the budget: every rule, the risk level, the audit."""
    level, experts = risk_of(record, packs)
    weight = policy.risk.weights[level]
    by_outcome: dict[Outcome, list[tuple[Rule, float, str]]] = {
        "reject": [],
        "human": [],
        "accept": [],
    }
    for rule in policy.rules:
        for name in _matching(rule, record.checks):
            hit = fires(rule, name, record.checks[name])
            if hit is not None:
                by_outcome[rule.route].append((rule, *hit))
                break
    fired = [rule.name for hits in by_outcome.values() for rule, _, _ in hits]
    risky = level in policy.risk.experts
    if by_outcome["reject"]:
        reasons = [why for _, _, why in by_outcome["reject"]]
        return Verdict("reject", reasons, level, fired=fired)
    humans = by_outcome["human"]
    if humans or risky or policy.default == "human":
        reasons = [why for _, _, why in humans]
        uncertainty = max((u for _, u, _ in humans), default=0.0)
        expertise = [tag for rule, _, _ in humans for tag in rule.expertise]
        k = max([rule.k or policy.k for rule, _, _ in humans] or [policy.k])
        if risky:
            reasons.append(f"risk: {record.domain} is {level} risk")
            uncertainty = max(uncertainty, policy.risk.uncertainty)
            expertise += experts
            k = max(k, policy.risk.k)
        if not reasons:
            reasons, uncertainty = ["default: the policy sends every record to humans"], 1.0
        project = next((rule.project for rule, _, _ in humans if rule.project), policy.project)
        return Verdict(
            "human",
            reasons,
            level,
            priority=uncertainty * weight,
            project=project,
            expertise=list(dict.fromkeys(expertise)),
            k=k,
            fired=fired,
        )
    if policy.default == "reject":
        return Verdict("reject", ["default: no rule accepted it"], level, fired=fired)
    reasons = [why for _, _, why in by_outcome["accept"]] or ["no rule fired"]
    audit = policy.audit
    if audit.rate and audit_draw(audit.seed, record.id) < audit.rate:
        why = f" ({audit.because})" if audit.because else ""
        return Verdict(
            "human",
            [*reasons, f"audit: a {audit.rate:g} sample of automatic accepts{why}"],
            level,
            priority=audit.uncertainty * weight,
            project=audit.project or policy.project,
            k=audit.k,
            audit=True,
            fired=fired,
        )
    return Verdict("accept", reasons, level, fired=fired)
