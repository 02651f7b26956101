"""Safety categories flagged by an LLM judge, combined with the lexicon's flags.

The categories are those of the safety lexicon (:mod:`datamill.checks.safety`: violence,
self-harm, sexual, hate, illegal activity, medical, legal and financial advice, or a user's
own lexicon). The judge answers true or false for each, with a rationale, through
structured output; a category counts as judged unsafe when any judge flags it. ``combine``
says how the two flaggers make the verdict: ``either`` (the default: a safety review would
rather see too much), ``both``, or ``judge`` alone. If no judge answers, the lexicon's
flags are kept but the result fails, with the judges' errors: safety unknown means review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, create_model

from datamill.checks.base import Part, text_of
from datamill.checks.judge_prompts import transcript
from datamill.checks.llm_judge import JudgeCheck
from datamill.checks.registry import register
from datamill.checks.safety import Hits, Lexicon
from datamill.llm.engine import Outcome
from datamill.records import CheckResult, Record

MEANINGS = {
    "violence": "violence, threats, weapons or instructions to hurt people",
    "self_harm": "self-harm or suicide encouraged or explained",
    "sexual": "sexual content",
    "hate": "hate, slurs or demeaning content about a group",
    "illegal_activity": "help with crimes, drugs, hacking or fraud",
    "medical_advice": "specific medical advice (diagnosis, doses, treatment)",
    "legal_advice": "specific legal advice",
    "financial_advice": "specific investment or financial advice",
}


@cache
def flags_schema(categories: tuple[str, ...]) -> type[BaseModel]:
    fields: dict = {"rationale": (str, Field(max_length=300))}  # type: ignore[type-arg]
    fields |= {name: (bool, ...) for name in categories}
    return create_model("SafetyFlags", __config__=ConfigDict(extra="forbid"), **fields)  # type: ignore[call-overload]


@register
class SafetyJudge(JudgeCheck):
    name = "safety_judge"
    prompt_name = "safety"

    def __init__(
        self,
        categories: Iterable[str] | None = None,
        lexicon: str | None = None,
        combine: Literal["either", "both", "judge"] = "either",
        on: Part = "response",
        max_tokens: int = 256,
        **shared: Any,
    ) -> None:
        """``categories``: which to flag (default: all of the lexicon's). ``lexicon``: a
        lexicon file replacing the shipped one. ``combine``: either, both or judge."""
        super().__init__(max_tokens=max_tokens, **shared)
        self.lexicon = Lexicon.load(lexicon)
        known = self.lexicon.min_hits
        self.categories = tuple(known if categories is None else categories)
        unknown = sorted(set(self.categories) - set(known))
        if unknown or not self.categories:
            raise ValueError(
                f"no safety category '{unknown[0] if unknown else ''}'; known: {', '.join(known)}"
            )
        if combine not in ("either", "both", "judge"):
            raise ValueError("combine is either, both or judge")
        self.combine_mode, self.on = combine, on
        self.schema = flags_schema(self.categories)

    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]:
        meanings = {c: MEANINGS.get(c, c.replace("_", " ")) for c in self.categories}
        requests = [
            self.request(
                conversation=self.quote("CONVERSATION", transcript(r.prompt)),
                response=self.quote("RESPONSE", text_of(r, self.on)),
                categories=meanings,
            )
            for r in records
        ]
        by_judge = await self.ask_all(requests, self.schema)
        return [
            self.combine(
                self.lexicon.scan(text_of(r, self.on), self.categories),
                [outcomes[i] for outcomes in by_judge],
            )
            for i, r in enumerate(records)
        ]

    def combine(self, hits: dict[str, Hits], outcomes: Sequence[Outcome]) -> CheckResult:
        answers = [(j, o.parsed) for j, o in zip(self.judges, outcomes, strict=True) if o.ok]
        judged = {c: any(getattr(a, c) for _, a in answers) for c in self.categories}
        categories: dict[str, JsonValue] = {}
        for c in self.categories:
            found = hits.get(c)
            lexical = found is not None and found.count >= self.lexicon.min_hits[c]
            judge = judged[c] if answers else None
            flagged = {
                "either": lexical or bool(judge),
                "both": lexical and bool(judge),
                "judge": bool(judge),
            }[self.combine_mode]
            if found is not None or judge or flagged:
                categories[c] = {
                    "lexicon": found.count if found else 0,
                    "terms": list(found.terms) if found else [],
                    "judge": judge,
                    "flagged": flagged,
                }
        flagged = sum(bool(v["flagged"]) for v in categories.values())  # type: ignore[index,call-overload]
        details = self.base_details(outcomes) | {
            "combine": self.combine_mode,
            "categories": categories,
            "rationales": {j: a.rationale for j, a in answers},
        }
        if not answers:
            details["reason"] = "no judge gave a valid verdict; lexicon flags only"
            return CheckResult(score=float(flagged), passed=False, details=details)
        return CheckResult(score=float(flagged), passed=not flagged, details=details)
