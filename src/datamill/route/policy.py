"""Routing policies: YAML files that say which records go to humans, and which are accepted
or rejected automatically. ``recipes/policies/default.yaml`` is a commented example.

A rule looks at one field of a check's result (``score``, ``passed`` or a ``details.``
path) of any check, named exactly or by a glob, and routes the record when its condition
holds. Conditions: ``failed: true``, ``between: [lo, hi]`` (inclusive), ``above: x``,
``below: x`` (strict) or ``equals: value``.

``calibration`` ties the rules over the judge's checks to how well the judge was measured
to agree with people (``route/calibration.py``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from datamill.yamlfile import load_model

Outcome = Literal["accept", "reject", "human"]
Level = Literal["low", "medium", "high"]
CONDITIONS = ("failed", "between", "above", "below", "equals")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Rule(_Strict):
    name: str = Field(min_length=1)
    check: str | list[str] = Field(description="check name(s); globs such as 'judge*' match")
    field: str = Field("score", description="score, passed or details.<path>")
    failed: Literal[True] | None = None
    between: tuple[float, float] | None = None
    above: float | None = None
    below: float | None = None
    equals: JsonValue = None
    route: Outcome
    project: str | None = Field(None, description="human: the project (default: the policy's)")
    expertise: list[str] = Field(default_factory=list, description="human: tags annotators need")
    k: int | None = Field(None, ge=1, le=100, description="human: annotators per item")
    uncertainty: float = Field(
        1.0, ge=0, le=1, description="human: how unsure the automatic verdict is (priority)"
    )
    because: str | None = Field(
        None, description="why the rule differs from the file (set by calibration)"
    )

    @model_validator(mode="after")
    def _one_condition(self) -> Rule:
        given = [c for c in CONDITIONS if c in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(
                f"rule '{self.name}' needs exactly one condition of {', '.join(CONDITIONS)}"
                f"{'; it has ' + ', '.join(given) if given else ''}"
            )
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"rule '{self.name}': between needs [low, high]")
        if not (self.field in ("score", "passed") or self.field.startswith("details.")):
            raise ValueError(f"rule '{self.name}': field is score, passed or details.<path>")
        return self

    @property
    def checks(self) -> list[str]:
        return [self.check] if isinstance(self.check, str) else self.check


class Risk(_Strict):
    """The domain's risk level (from its domain pack) weighs priority and may call experts."""

    weights: dict[Level, float] = Field(
        default_factory=lambda: {"low": 1.0, "medium": 2.0, "high": 4.0}
    )
    experts: list[Level] = Field(
        default_factory=lambda: ["high"], description="levels whose records go to experts"
    )
    k: int = Field(2, ge=1, le=100, description="annotators per item sent for its risk")
    uncertainty: float = Field(0.5, ge=0, le=1, description="of an item sent only for its risk")
    packs: list[str] = Field(
        default_factory=list, description="domain pack files besides the built-in ones"
    )

    @model_validator(mode="after")
    def _every_level(self) -> Risk:
        missing = {"low", "medium", "high"} - set(self.weights)
        if missing:
            raise ValueError(f"weights needs a weight for {', '.join(sorted(missing))}")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must not be negative")
        return self


class Audit(_Strict):
    """A seeded random share of auto-accepted records goes to humans, to measure how good
    automatic acceptance is."""

    rate: float = Field(0.0, ge=0, le=1)
    seed: int = 0
    project: str | None = Field(None, description="default: the policy's project")
    k: int = Field(1, ge=1, le=100)
    uncertainty: float = Field(0.1, ge=0, le=1, description="audit items' priority weight")
    because: str | None = Field(
        None, description="why the rate differs from the file (set by calibration)"
    )


class Calibration(_Strict):
    """How far routing trusts the judge: its measured calibration and the bar it must meet.
    Written as a mapping, or as just the file's path (the defaults below)."""

    path: Path = Field(description="JSON of datamill calibrate --out, relative to the policy")
    min_kappa: float | None = Field(0.4, ge=-1, le=1, description="Cohen's kappa below: distrust")
    min_accuracy: float | None = Field(0.7, ge=0, le=1, description="accuracy below: distrust")
    checks: list[str] = Field(
        default_factory=lambda: ["judge*", "pairwise"],
        description="the judge's checks: rules over them change when it is distrusted",
    )
    widen: float = Field(0.5, ge=0, le=10, description="between bands grow by this × width a side")
    rejects: Literal["human", "keep"] = Field(
        "human", description="human: a distrusted judge's reject rules send to humans instead"
    )
    audit_rate: float | None = Field(
        0.2, ge=0, le=1, description="the audit rate rises to at least this"
    )

    @model_validator(mode="before")
    @classmethod
    def _just_a_path(cls, data: object) -> object:
        return {"path": data} if isinstance(data, str) else data


class Policy(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    project: str = Field("review", min_length=1, description="where human items go")
    k: int = Field(1, ge=1, le=100, description="annotators per human item")
    default: Outcome = Field("accept", description="when no rule fires")
    rules: list[Rule] = Field(default_factory=list)
    risk: Risk = Field(default_factory=Risk)
    audit: Audit = Field(default_factory=Audit)
    budget: int | None = Field(None, ge=0, description="most items sent to humans")
    over_budget: Literal["accept", "reject"] = Field(
        "reject", description="what becomes of items that needed a human past the budget"
    )
    calibration: Calibration | None = None
    base: Path | None = Field(None, exclude=True)  # the policy file's folder

    @model_validator(mode="after")
    def _unique_rule_names(self) -> Policy:
        names = [r.name for r in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names repeat: {', '.join(repeated)}")
        return self

    def ident(self) -> str:
        """``policy:<name>@<hash>``: the hash of everything that decides, overrides included."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return f"policy:{self.name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"

    def calibration_path(self) -> Path | None:
        """The calibration file, if any; a relative path is from the policy's folder."""
        if self.calibration is None:
            return None
        return (self.base or Path.cwd()) / self.calibration.path

    def pack_paths(self) -> list[Path]:
        base = self.base or Path.cwd()
        return [base / p for p in self.risk.packs]


def load_policy(path: str | Path) -> Policy:
    """A policy file; every problem is an InputError naming the file and the field."""
    return load_model(path, Policy, base=Path(path).parent)
