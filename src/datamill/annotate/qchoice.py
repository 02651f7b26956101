"""Questions answered by choosing: rubric ratings, pairwise preference, ranking, labels."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

from datamill.annotate.errors import AnswerError
from datamill.annotate.qbase import (
    NUANCE_TAGS,
    RUBRIC_CRITERIA,
    SAFETY_LABELS,
    Name,
    QuestionBase,
    View,
    parse_strict,
)


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    description: str = Field(default="", max_length=1000)


class Rubric(QuestionBase):
    type: Literal["rubric"] = "rubric"
    kind = "rubric"
    criteria: list[Criterion] = Field(
        default_factory=lambda: [Criterion(name=c) for c in RUBRIC_CRITERIA],
        min_length=1,
        max_length=30,
    )
    scale: Literal[5, 7] = 5
    anchors: dict[int, str] = Field(default_factory=dict)  # e.g. {1: "wrong", 5: "perfect"}

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        bad = [k for k in self.anchors if not 1 <= k <= self.scale]
        if bad:
            raise ValueError(f"anchor {bad[0]} is outside the scale 1..{self.scale}")
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise ValueError("criteria names must be unique")
        return self

    def store(self, value: Any, view: View) -> Any:
        scores = parse_strict(dict[str, StrictInt], value, self.name)
        names = {c.name for c in self.criteria}
        for key, score in scores.items():
            if key not in names:
                raise AnswerError(self.name, key, f"unknown criterion; known: {sorted(names)}")
            if not 1 <= score <= self.scale:
                raise AnswerError(self.name, key, f"{score} is outside 1..{self.scale}")
        missing = [c.name for c in self.criteria if c.name not in scores]
        if missing:
            raise AnswerError(self.name, missing[0], "no score given")
        return scores


class PairwiseAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choice: Literal["A", "B", "tie"]
    strength: StrictInt | None = None


class Pairwise(QuestionBase):
    type: Literal["pairwise"] = "pairwise"
    kind = "pairwise"
    allow_tie: bool = True
    strengths: int = Field(default=3, ge=1, le=5)  # 1: slightly better .. strengths: much

    def needs_candidates(self) -> int:
        return 2

    def store(self, value: Any, view: View) -> Any:
        answer = parse_strict(PairwiseAnswer, value, self.name)
        a, b = view.display_order[0], view.display_order[1]
        if answer.choice == "tie":
            if not self.allow_tie:
                raise AnswerError(self.name, "choice", "this question allows no tie")
            return {"chosen": None, "rejected": None, "tie": True, "strength": None, "pair": [a, b]}
        strength = answer.strength if answer.strength is not None else 1
        if not 1 <= strength <= self.strengths:
            raise AnswerError(self.name, "strength", f"{strength} is outside 1..{self.strengths}")
        chosen, rejected = (a, b) if answer.choice == "A" else (b, a)
        return {
            "chosen": chosen,
            "rejected": rejected,
            "tie": False,
            "strength": strength,
            "pair": [a, b],
        }


class Ranking(QuestionBase):
    type: Literal["ranking"] = "ranking"
    kind = "ranking"

    def needs_candidates(self) -> int:
        return 2

    def store(self, value: Any, view: View) -> Any:
        order = parse_strict(list[StrictInt], value, self.name)
        shown = len(view.display_order)
        if sorted(order) != list(range(shown)):
            raise AnswerError(
                self.name, None, f"rank every one of the {shown} responses once (positions 0..)"
            )
        return [view.display_order[position] for position in order]


class Label(QuestionBase):
    type: Literal["label"] = "label"
    kind = "label"
    options: list[Name] = Field(default_factory=lambda: list(SAFETY_LABELS), min_length=1)

    def store(self, value: Any, view: View) -> Any:
        label = parse_strict(StrictStr, value, self.name)
        if label not in self.options:
            raise AnswerError(self.name, None, f"unknown option {label[:100]!r}")
        return label


class MultiLabel(QuestionBase):
    type: Literal["multilabel"] = "multilabel"
    kind = "multilabel"
    options: list[Name] = Field(default_factory=lambda: list(NUANCE_TAGS), min_length=1)
    required: bool = False  # choosing nothing is an answer

    def store(self, value: Any, view: View) -> Any:
        labels = parse_strict(list[StrictStr], value, self.name)
        for i, label in enumerate(labels):
            if label not in self.options:
                raise AnswerError(self.name, str(i), f"unknown option {label[:100]!r}")
        if len(set(labels)) != len(labels):
            raise AnswerError(self.name, None, "an option is chosen twice")
        return labels
