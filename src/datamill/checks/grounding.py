"""Is a document answer supported by the chunk it cites? An LLM verdict and a cheap signal.

Records of the ``grounded_qa`` family carry their source chunk and quote in
``metadata["grounding"]``. Two signals are computed: ``overlap``, the share of the
answer's content words that occur in the chunk (no model call; low overlap suggests
the answer says things the chunk does not), and, unless ``judge`` is off, an LLM verdict
with structured output: ``supported``, ``partial`` or ``unsupported``. The score is 1, 0.5
or 0 from the verdict (the overlap alone without a judge); the record passes when the
verdict is ``supported`` (or the overlap reaches ``min_overlap`` without a judge).
Records without a cited chunk get no verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from datamill.checks.dedup import normalise
from datamill.checks.llm_judge import JudgeCheck
from datamill.checks.registry import register
from datamill.llm.engine import Outcome
from datamill.records import CheckResult, Record

VERDICT_SCORES = {"supported": 1.0, "partial": 0.5, "unsupported": 0.0}
# Words too common to count as content in the overlap signal.
_STOPWORDS = """a an the and or but of to in on at by for with from as is are was were be been
being it its this that these those there their they them he she his her we our you your i not
no do does did can could will would should may might must has have had so if than then what
which who whom how why when where"""
STOPWORDS = frozenset(_STOPWORDS.split())


class Support(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(max_length=300)
    verdict: Literal["supported", "partial", "unsupported"]


def cited_chunk(record: Record) -> str | None:
    grounding = record.metadata.get("grounding")
    if isinstance(grounding, dict) and isinstance(grounding.get("chunk"), str):
        return grounding["chunk"]
    return None


def overlap(answer: str, chunk: str) -> float:
    """The share of the answer's content words found in the chunk (1.0 if it has none)."""
    words = [w for w in normalise(answer).split() if w not in STOPWORDS]
    if not words:
        return 1.0
    source = set(normalise(chunk).split())
    return sum(w in source for w in words) / len(words)


@register
class Grounding(JudgeCheck):
    name = "grounding"
    prompt_name = "grounding"

    def __init__(
        self, judge: bool = True, min_overlap: float = 0.6, max_tokens: int = 256, **shared: Any
    ) -> None:
        """``judge``: ask an LLM (else the word overlap alone decides). ``min_overlap``:
        the overlap that passes when there is no judge."""
        super().__init__(max_tokens=max_tokens, **shared)
        if not 0 <= min_overlap <= 1:
            raise ValueError("min_overlap must be in [0, 1]")
        self.judge, self.min_overlap = judge, min_overlap

    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]:
        results = [CheckResult(details={"reason": "no cited chunk"}) for _ in records]
        cited = [(i, c) for i, r in enumerate(records) if (c := cited_chunk(r)) is not None]
        for i, chunk in cited:
            share = round(overlap(records[i].response or "", chunk), 4)
            results[i] = CheckResult(
                score=share,
                passed=share >= self.min_overlap,
                details={"overlap": share, "judge": None},
            )
        if not self.judge or not cited:
            return results
        requests = [
            self.request(
                excerpt=self.quote("EXCERPT", chunk),
                question=self.quote("QUESTION", records[i].prompt[-1].content or ""),
                answer=self.quote("ANSWER", records[i].response or ""),
            )
            for i, chunk in cited
        ]
        by_judge = await self.ask_all(requests, Support)
        for n, (i, _) in enumerate(cited):
            results[i] = self.combine(results[i], [outcomes[n] for outcomes in by_judge])
        return results

    def combine(self, lexical: CheckResult, outcomes: Sequence[Outcome]) -> CheckResult:
        verdicts = [
            {"judge": j, "verdict": o.parsed.verdict, "rationale": o.parsed.rationale}
            for j, o in zip(self.judges, outcomes, strict=True)
            if o.ok
        ]
        details = {**lexical.details, **self.base_details(outcomes), "judges": verdicts}
        if not verdicts:
            details["reason"] = "no judge gave a valid verdict"
            return CheckResult(score=None, passed=False, details=details)
        scores = [VERDICT_SCORES[str(v["verdict"])] for v in verdicts]
        score = round(sum(scores) / len(scores), 4)
        details["judge"] = min(VERDICT_SCORES, key=lambda v: abs(VERDICT_SCORES[v] - score))
        return CheckResult(score=score, passed=score == 1.0, details=details)
