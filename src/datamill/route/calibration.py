"""Routing that trusts the judge only as far as it was measured to deserve.

A policy's ``calibration`` names the JSON that ``datamill calibrate --out`` writes and the
kappa and accuracy the judge must reach. When the measured judge falls short (or a figure
could not be measured), the rules over the judge's checks are changed before any record is
routed: each ``between`` band (the judge's uncertain zone) widens by ``widen`` times its
width on each side, a rule that would reject on the judge's word alone sends to humans
instead (``rejects: human``), and the audit rate rises to at least ``audit_rate``. Every
rule changed carries why (``because``), which the reason on each record it fires on
repeats. A judge that meets the thresholds leaves the policy as written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from datamill.errors import InputError
from datamill.route.policy import Calibration, Policy, Rule


@dataclass(frozen=True)
class Figures:
    """What a calibration file says of the judge; None where it could not be measured."""

    kappa: float | None
    accuracy: float | None
    items: int | None
    source: str  # the reference set or dataset it was measured on


def _figure(block: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = block.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) if math.isfinite(value) else None
    return None


def read_figures(path: Path) -> Figures:
    """The judge's figures from ``datamill calibrate --out``'s JSON: a reference's (the
    judges' combination when there were several), or a dataset's pairwise figures, else
    its rating figures (quadratic kappa, pairwise accuracy of the order)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(str(path), None, None, f"not a readable calibration file: {e}") from None
    if not isinstance(raw, dict):
        raise InputError(str(path), None, None, "expected the JSON of datamill calibrate --out")
    source = str(raw.get("reference") or raw.get("dataset") or path.name)

    def figures(block: dict[str, Any], kappa: str, accuracy: str) -> Figures:
        items = block.get("items")
        count = int(items) if isinstance(items, int | float) else None
        return Figures(_figure(block, kappa), _figure(block, accuracy), count, source)

    for block in (raw, raw.get("pairwise")):
        if isinstance(block, dict) and ("kappa" in block or "accuracy" in block):
            return figures(block, "kappa", "accuracy")
    ratings = raw.get("ratings")
    if isinstance(ratings, dict):
        return figures(ratings, "kappa_quadratic", "pairwise_accuracy")
    raise InputError(str(path), None, None, "no kappa or accuracy: not a calibration file")


def shortfalls(figures: Figures, spec: Calibration) -> list[str]:
    """Why the judge is not trusted (empty: it is)."""
    out = []
    for name, value, floor in (
        ("κ", figures.kappa, spec.min_kappa),
        ("accuracy", figures.accuracy, spec.min_accuracy),
    ):
        if floor is None:
            continue
        if value is None:
            out.append(f"{name} not measured")
        elif value < floor:
            out.append(f"{name} {value:.2f} < {floor:g}")
    return out


def _judges(rule: Rule, patterns: list[str]) -> bool:
    """Whether a rule looks at one of the judge's checks (names or globs on either side)."""
    return any(
        fnmatchcase(name, p) or fnmatchcase(p, name) for name in rule.checks for p in patterns
    )


def _changed(rule: Rule, spec: Calibration, why: str) -> Rule:
    update: dict[str, Any] = {}
    notes = []
    if rule.between is not None and spec.widen > 0:
        lo, hi = rule.between
        extra = (hi - lo) * spec.widen
        update["between"] = (lo - extra, hi + extra)
        notes.append(f"band [{lo:g}, {hi:g}] widened")
    if rule.route == "reject" and spec.rejects == "human":
        update["route"] = "human"
        notes.append("would reject, sent to humans")
    if not notes:
        return rule
    update["because"] = f"{', '.join(notes)}: {why}"
    return rule.model_copy(update=update)


@dataclass(frozen=True)
class Applied:
    policy: Policy  # the policy routing uses
    figures: Figures | None
    distrusted: bool
    why: str  # "calibration on SOURCE: κ 0.21 < 0.4", or "" when trusted or not given


def apply_calibration(policy: Policy) -> Applied:
    """The policy adjusted to its judge's measured calibration (see the module docstring)."""
    spec, path = policy.calibration, policy.calibration_path()
    if spec is None or path is None:
        return Applied(policy, None, False, "")
    figures = read_figures(path)
    short = shortfalls(figures, spec)
    if not short:
        return Applied(policy, figures, False, "")
    why = f"calibration on {figures.source}: {', '.join(short)}"
    rules = [_changed(r, spec, why) if _judges(r, spec.checks) else r for r in policy.rules]
    audit = policy.audit
    if spec.audit_rate is not None and spec.audit_rate > audit.rate:
        note = f"rate raised from {audit.rate:g}: {why}"
        audit = audit.model_copy(update={"rate": spec.audit_rate, "because": note})
    adjusted = policy.model_copy(update={"rules": rules, "audit": audit})
    return Applied(adjusted, figures, True, why)
