"""LLM-as-judge with a rubric: six criteria, 1 to 5 each, every score with its rationale.

The criteria are accuracy, helpfulness, truthfulness, safety, completeness and tone; a
judge's overall score is their mean. With several judges (a list of backends) the result's
score is the mean of their overall scores, and their disagreement is kept as an uncertainty
signal: ``spread`` (highest minus lowest overall score), per-criterion spreads, and
``uncertain`` when the spread exceeds ``max_spread`` or a judge failed. The result passes
when the score is at least ``min_score``; a record no judge could score fails, with each
judge's error and raw answer in its details.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from datamill.checks.judge_prompts import transcript
from datamill.checks.llm_judge import JudgeCheck
from datamill.checks.registry import register
from datamill.llm.engine import Outcome
from datamill.records import CheckResult, Record

CRITERIA = ("accuracy", "helpfulness", "truthfulness", "safety", "completeness", "tone")


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The rationale comes first, so the model explains before it scores. Its length is
    # capped so six of them fit in the token budget and the JSON always closes.
    rationale: str = Field(max_length=200)
    score: Literal[1, 2, 3, 4, 5]


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accuracy: Criterion
    helpfulness: Criterion
    truthfulness: Criterion
    safety: Criterion
    completeness: Criterion
    tone: Criterion


def _verdict(judge: str, rubric: Rubric) -> dict[str, JsonValue]:
    scores = {c: getattr(rubric, c).score for c in CRITERIA}
    return {
        "judge": judge,
        "overall": round(statistics.fmean(scores.values()), 4),
        "scores": dict(scores),
        "rationales": {c: getattr(rubric, c).rationale for c in CRITERIA},
    }


@register
class Judge(JudgeCheck):
    name = "judge"
    prompt_name = "rubric"

    def __init__(
        self,
        min_score: float = 3.0,
        max_spread: float = 1.0,
        max_tokens: int = 768,
        **shared: Any,
    ) -> None:
        """``min_score``: the overall score (1-5) to pass. ``max_spread``: the disagreement
        between judges' overall scores above which a result is marked uncertain."""
        super().__init__(max_tokens=max_tokens, **shared)
        if not 1 <= min_score <= 5 or max_spread < 0:
            raise ValueError("min_score must be in [1, 5] and max_spread at least 0")
        self.min_score, self.max_spread = min_score, max_spread

    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]:
        judged = [i for i, r in enumerate(records) if (r.response or "").strip()]
        requests = [
            self.request(
                conversation=self.quote("CONVERSATION", transcript(records[i].prompt)),
                response=self.quote("RESPONSE", records[i].response or ""),
            )
            for i in judged
        ]
        by_judge = await self.ask_all(requests, Rubric)
        results = [
            CheckResult(details={"reason": "no response to judge", "prompt": self.prompt_info})
            for _ in records
        ]
        for n, i in enumerate(judged):
            results[i] = self.combine([outcomes[n] for outcomes in by_judge])
        return results

    def combine(self, outcomes: Sequence[Outcome]) -> CheckResult:
        """One result from each judge's outcome for a record."""
        verdicts = [
            _verdict(judge, o.parsed)
            for judge, o in zip(self.judges, outcomes, strict=True)
            if o.ok
        ]
        details = self.base_details(outcomes)
        details["judges"] = verdicts  # type: ignore[assignment]
        if not verdicts:
            details["reason"] = "no judge gave a valid verdict"
            return CheckResult(score=None, passed=False, details=details)
        overall = [float(v["overall"]) for v in verdicts]  # type: ignore[arg-type]
        spread = max(overall) - min(overall)
        per_criterion = {c: [v["scores"][c] for v in verdicts] for c in CRITERIA}  # type: ignore[index]
        details |= {
            "criteria": {c: round(statistics.fmean(s), 4) for c, s in per_criterion.items()},
            "criteria_spread": {c: max(s) - min(s) for c, s in per_criterion.items()},
            "spread": round(spread, 4),
            "uncertain": spread > self.max_spread or len(verdicts) < len(outcomes),
        }
        score = round(statistics.fmean(overall), 4)
        return CheckResult(score=score, passed=score >= self.min_score, details=details)
