"""Hallucination risk from the model itself: self-consistency, and verification on record.

``self_consistency`` samples ``k`` fresh answers to a record's prompt (from each backend)
and measures how much they agree. For math-like records (``mode: answer``; by default
records of the ``math_cot`` task or with a ``final_answer``) the samples are asked to end
with a final answer and agreement is exact: the share of samples giving the most common
answer. Otherwise (``mode: text``) it is the mean pairwise similarity of the samples, by
word overlap or by sentence embeddings. The details also say how well the samples agree
with the record's own answer: a response that fresh samples rarely reproduce is a risk.

``verified`` surfaces what generation already verified on a record: a math answer checked
by computation (``math_verified``), code run against its tests (``tests_pass``) or a quote
found in its source chunk (``grounded``).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from itertools import combinations
from typing import Any, Literal

from pydantic import JsonValue

from datamill.checks.base import RecordCheck, text_of
from datamill.checks.dedup import normalise
from datamill.checks.llm_judge import JudgeCheck, failure
from datamill.checks.registry import register
from datamill.generate import arithmetic
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome, samples
from datamill.records import CheckResult, Record

_FINAL = re.compile(r"(?:final answer|the answer is|####)\s*(?:is)?\s*[:=]?\s*([^\n]+)", re.I)


def final_answer(text: str) -> str | None:
    """The number a solution ends on: after its last "Final answer:" (or "####"), else on
    its last line; as a canonical fraction string ("18", "3/4"), or None."""
    found = _FINAL.findall(text)
    lines = text.strip().splitlines()
    tail = found[-1] if found else (lines[-1] if lines else "")
    value = arithmetic.parse_answer(tail)
    return None if value is None else str(value)


def word_overlap(a: str, b: str) -> float:
    """Jaccard similarity of the normalised word sets of two texts (1.0 for two empty)."""
    x, y = set(normalise(a).split()), set(normalise(b).split())
    return len(x & y) / len(x | y) if x | y else 1.0


@register
class SelfConsistency(JudgeCheck):
    name = "self_consistency"
    prompt_name = "solve"

    def __init__(
        self,
        k: int = 5,
        mode: Literal["auto", "answer", "text"] = "auto",
        similarity: Literal["words", "embedding"] = "words",
        min_agreement: float = 0.5,
        temperature: float = 0.8,
        max_tokens: int = 384,
        **shared: Any,
    ) -> None:
        """``k``: samples per record and backend. ``similarity``: how free-text samples are
        compared (``embedding`` needs the semantic extra). ``min_agreement``: agreement
        (0-1) needed to pass."""
        super().__init__(temperature=temperature, max_tokens=max_tokens, **shared)
        if k < 2 or not 0 <= min_agreement <= 1:
            raise ValueError("k must be at least 2 and min_agreement in [0, 1]")
        if mode not in ("auto", "answer", "text") or similarity not in ("words", "embedding"):
            raise ValueError("mode is auto, answer or text; similarity is words or embedding")
        self.k, self.mode, self.similarity, self.min_agreement = k, mode, similarity, min_agreement
        self._encoder = None

    def mode_for(self, record: Record) -> str:
        if self.mode != "auto":
            return self.mode
        math = record.task == "math_cot" or "final_answer" in record.metadata
        return "answer" if math else "text"

    def _request(self, record: Record, mode: str) -> ChatRequest:
        if mode == "answer":
            return self.request(problem=text_of(record, "prompt"))
        return ChatRequest(
            messages=record.prompt,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )

    async def check_batch(self, records: Sequence[Record]) -> list[CheckResult]:
        asked = [(i, self.mode_for(r)) for i, r in enumerate(records) if r.prompt]
        requests = [
            sample
            for i, mode in asked
            for sample in samples(self._request(records[i], mode), self.k)
        ]
        by_judge = await self.ask_all(requests, None)
        results = [CheckResult(details={"reason": "no prompt to sample"}) for _ in records]
        for n, (i, mode) in enumerate(asked):
            outcomes = [o for judge in by_judge for o in judge[n * self.k : (n + 1) * self.k]]
            results[i] = self.combine(records[i], mode, outcomes)
        return results

    def combine(self, record: Record, mode: str, outcomes: Sequence[Outcome]) -> CheckResult:
        texts = [o.completion.text for o in outcomes if o.ok and o.completion is not None]
        details: dict[str, JsonValue] = {
            "mode": mode,
            "samples": len(texts),
            "failures": [failure(o) for o in outcomes if not o.ok],
            "usage": self.usage(outcomes),
        }
        if len(texts) < 2:
            details["reason"] = "fewer than two samples"
            return CheckResult(score=None, passed=False, details=details)
        if mode == "answer":
            agreement, with_record = self._answers(record, texts, details)
        else:
            agreement, with_record = self._texts(record, texts, details)
        details["record_agreement"] = None if with_record is None else round(with_record, 4)
        score = round(agreement, 4)
        return CheckResult(score=score, passed=score >= self.min_agreement, details=details)

    def _answers(
        self, record: Record, texts: list[str], details: dict[str, JsonValue]
    ) -> tuple[float, float | None]:
        answers = [final_answer(t) for t in texts]
        given = record.metadata.get("final_answer")
        own = final_answer(given if isinstance(given, str) else (record.response or ""))
        counts = Counter(a for a in answers if a is not None)
        majority, n = counts.most_common(1)[0] if counts else (None, 0)
        details |= {"answers": answers, "majority": majority, "record_answer": own}
        with_record = None if own is None else sum(a == own for a in answers) / len(answers)
        return n / len(answers), with_record

    def _texts(
        self, record: Record, texts: list[str], details: dict[str, JsonValue]
    ) -> tuple[float, float | None]:
        details["similarity"] = self.similarity
        response = record.response
        if self.similarity == "embedding":
            vectors = self._encode([*texts, response or ""])
            sims = vectors[: len(texts)] @ vectors.T
            pairs = [float(sims[a, b]) for a, b in combinations(range(len(texts)), 2)]
            own = [float(s) for s in sims[:, len(texts)]]
        else:
            pairs = [word_overlap(a, b) for a, b in combinations(texts, 2)]
            own = [word_overlap(t, response or "") for t in texts]
        return statistics.fmean(pairs), (statistics.fmean(own) if response is not None else None)

    def _encode(self, texts: list[str]):  # type: ignore[no-untyped-def]
        if self._encoder is None:
            from datamill.embeddings import SentenceEncoder

            self._encoder = SentenceEncoder()
        return self._encoder.encode(texts)


VERIFICATIONS = {"math_verified": "math", "tests_pass": "code", "grounded": "quote"}


@register
class Verified(RecordCheck):
    """What generation verified on the record; no verdict where nothing was verified."""

    name = "verified"

    def __init__(self) -> None:
        """No options: it reads what generation left on the record."""

    def check(self, record: Record) -> CheckResult:
        for source, kind in VERIFICATIONS.items():
            found = record.checks.get(source)
            if found is None:
                continue
            score = found.score if found.score is not None else float(bool(found.passed))
            details: dict[str, JsonValue] = {"kind": kind, "source": source}
            details["reason"] = found.details.get("reason") or ""
            if kind == "code":
                details["tests_passed"] = found.details.get("passed_tests")
            return CheckResult(score=score, passed=found.passed, details=details)
        verified = record.metadata.get("verified")
        if isinstance(verified, bool):
            details = {"kind": record.task or "unknown", "source": "metadata"}
            return CheckResult(score=float(verified), passed=verified, details=details)
        return CheckResult(details={"reason": "nothing was verified at generation"})
