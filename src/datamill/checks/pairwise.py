"""A pairwise judge: which of two responses to the same prompt is better, asked both ways.

The responses compared are the record's final assistant turn (if any) and its candidates,
up to ``max_items``; every pair is judged twice, once in each order, to cancel position
bias. A pair's verdict stands only when both orders name the same winner (or both a tie);
otherwise it is *inconsistent*, and when the judge picked the same position both times
that is counted as position bias (``first`` or ``second``).

The score is the first response's share of points against the others (a win 1, a tie or
an inconsistent pair 0.5): with two responses, 1 means the first is better. The result
passes when every pair got a consistent verdict; the details list each pair in both orders,
the ``consistency`` rate, the position-bias counts and the ``preferred`` response.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import combinations
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from datamill.checks.judge_prompts import transcript
from datamill.checks.llm_judge import JudgeCheck, failure
from datamill.checks.registry import register
from datamill.llm.engine import Outcome
from datamill.records import CheckResult, Record

Position = Literal["A", "B", "tie"]


class Preference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(max_length=300)
    winner: Position


def responses(record: Record, limit: int) -> list[tuple[str, str]]:
    """The labelled responses a record offers for comparison, at most ``limit``."""
    found = [("response", record.response)] if record.response is not None else []
    found += [(f"candidate {i}", c.content) for i, c in enumerate(record.candidates)]
    return [(label, text or "") for label, text in found[:limit]]


def resolve(forward: Position, reverse: Position) -> tuple[str | None, str | None]:
    """The winner of a pair judged as (first, second) then (second, first): ``"first"``,
    ``"second"``, ``"tie"`` or None when the orders disagree; and the position the judge
    stuck to when they disagree because of it (``"first"`` or ``"second"``), else None."""
    mapped = {"A": "first", "B": "second", "tie": "tie"}
    swapped = {"A": "second", "B": "first", "tie": "tie"}
    a, b = mapped[forward], swapped[reverse]
    if a == b:
        return a, None
    if forward == reverse != "tie":
        return None, mapped[forward]
    return None, None


@register
class Pairwise(JudgeCheck):
    name = "pairwise"
    prompt_name = "pairwise"

    def __init__(self, max_items: int = 4, max_tokens: int = 256, **shared: Any) -> None:
        """``max_items``: responses compared per record, every pair of them in both orders.
        With several judges, each votes on each pair and the majority decides."""
        super().__init__(max_tokens=max_tokens, **shared)
        if max_items < 2:
            raise ValueError("max_items must be at least 2")
        self.max_items = max_items

    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]:
        plans = []  # (record number, responses, pairs)
        requests = []
        for i, record in enumerate(records):
            items = responses(record, self.max_items)
            if len(items) < 2:
                continue
            pairs = list(combinations(range(len(items)), 2))
            plans.append((i, items, pairs))
            conversation = self.quote("CONVERSATION", transcript(record.prompt))
            for x, y in pairs:
                for first, second in ((x, y), (y, x)):
                    requests.append(
                        self.request(
                            conversation=conversation,
                            a=self.quote("RESPONSE A", items[first][1]),
                            b=self.quote("RESPONSE B", items[second][1]),
                        )
                    )
        by_judge = await self.ask_all(requests, Preference)
        results = [
            CheckResult(details={"reason": "fewer than two responses", "prompt": self.prompt_info})
            for _ in records
        ]
        at = 0
        for i, items, pairs in plans:
            calls = [outcomes[at : at + 2 * len(pairs)] for outcomes in by_judge]
            results[i] = self.combine(items, pairs, calls)
            at += 2 * len(pairs)
        return results

    def combine(
        self,
        items: list[tuple[str, str]],
        pairs: list[tuple[int, int]],
        calls: list[list[Outcome]],
    ) -> CheckResult:
        """One result from each judge's two outcomes per pair (forward, then reverse)."""
        labels = [label for label, _ in items]
        points: Counter[str] = Counter({label: 0.0 for label in labels})
        verdicts: list[JsonValue] = []
        bias: Counter[str] = Counter(first=0, second=0)
        failures: list[JsonValue] = []
        consistent = judged = 0
        for p, (x, y) in enumerate(pairs):
            votes: list[str] = []
            for judge, outcomes in zip(self.judges, calls, strict=True):
                forward, reverse = outcomes[2 * p], outcomes[2 * p + 1]
                bad = [o for o in (forward, reverse) if not o.ok]
                if bad:
                    failures += [{"judge": judge, "pair": p, **failure(o)} for o in bad]
                    continue
                fwd, rev = forward.parsed.winner, reverse.parsed.winner
                winner, stuck = resolve(fwd, rev)
                judged += 1
                consistent += winner is not None
                if stuck is not None:
                    bias[stuck] += 1
                votes.append(winner or "inconsistent")
                verdicts.append(
                    {
                        "a": labels[x],
                        "b": labels[y],
                        "judge": judge,
                        "forward": fwd,
                        "reverse": rev,
                        "winner": {"first": labels[x], "second": labels[y]}.get(winner, winner),
                        "consistent": winner is not None,
                        "rationales": [forward.parsed.rationale, reverse.parsed.rationale],
                    }
                )
            top = Counter(votes).most_common()
            final = top[0][0] if top and (len(top) == 1 or top[0][1] > top[1][1]) else None
            if final == "first":
                points[labels[x]] += 1.0
            elif final == "second":
                points[labels[y]] += 1.0
            else:
                points[labels[x]] += 0.5
                points[labels[y]] += 0.5
        details: dict[str, JsonValue] = {
            "prompt": self.prompt_info,
            "pairs": verdicts,
            "swap": True,
            "consistency": round(consistent / judged, 4) if judged else None,
            "position_bias": dict(bias),
            "wins": dict(points),
            "failures": failures,
            "usage": self.usage([o for outcomes in calls for o in outcomes]),
        }
        if not judged:
            details["reason"] = "no judge gave a valid verdict"
            return CheckResult(score=None, passed=False, details=details)
        ranked = points.most_common()
        details["preferred"] = ranked[0][0] if ranked[0][1] > ranked[1][1] else None
        score = round(points[labels[0]] / (len(labels) - 1), 4)
        settled = consistent == judged and not failures
        return CheckResult(score=score, passed=settled, details=details)
