"""Candidate responses to prompts, the raw material of preference data.

For each prompt (from a dataset, or the seed tasks) the family samples ``n_candidates``
replies that differ on purpose: candidate ``j`` takes the ``j``-th entry (cyclically) of a
temperature list, of a list of system prompts and of a list of backend roles, so that
with several roles the candidates come from different models. A judge or a human then
ranks them. Identical replies are kept once: a pair of equal answers teaches nothing.

A recipe's temperature schedule replaces the temperature list: it runs over every
candidate of the run, candidate ``j`` of item ``i`` being number ``i * n_candidates + j``,
with the attributes ``candidate`` (``j``), ``role``, ``domain`` and ``language``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict, Field, model_validator

from datamill.errors import LLMError
from datamill.generate.family import Context, chunks, register
from datamill.generate.instructions import cycle, reply
from datamill.generate.sampling import item_seed
from datamill.generate.sources import Source, load_prompts
from datamill.generate.template import PromptTemplate
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Engine, Outcome
from datamill.records import Candidate, Message, Record

# Names the prompting in provenance: the prompt's own messages are sent as they are, after
# the candidate's system prompt when the prompt has none of its own.
CANDIDATE = PromptTemplate(name="candidate-response", version="1", user="{{ prompt }}")
SYSTEM_PROMPTS: list[str | None] = [
    None,
    "You are a helpful assistant. Answer concisely.",
    "You are an expert assistant. Give a thorough, well-structured answer.",
]


@dataclass(frozen=True)
class Variant:
    """How one candidate is sampled."""

    role: str
    temperature: float
    system: str | None
    seed: int


def variants(
    n: int,
    roles: Sequence[str],
    temperatures: Sequence[float],
    systems: Sequence[str | None],
    seed: int,
) -> list[Variant]:
    """The ``n`` candidates' settings, each list taken cyclically."""
    return [
        Variant(
            roles[j % len(roles)],
            temperatures[j % len(temperatures)],
            systems[j % len(systems)],
            seed + j,
        )
        for j in range(n)
    ]


def request(prompt: Source, variant: Variant, max_tokens: int) -> ChatRequest:
    messages = list(prompt.messages)
    if variant.system is not None and messages[0].role != "system":
        messages.insert(0, Message(role="system", content=variant.system))
    return ChatRequest(
        messages=messages,
        temperature=variant.temperature,
        max_tokens=max_tokens,
        seed=variant.seed,
    )


def candidate(variant: Variant, outcome: Outcome) -> Candidate:
    completion = outcome.completion
    assert completion is not None
    system = outcome.request.messages[0]
    return Candidate(
        content=completion.text.strip(),
        model=completion.model,
        backend=completion.backend,
        params=outcome.request.sampling(),
        metadata={
            "role": variant.role,
            "system_prompt": system.content if system.role == "system" else None,
            "finish_reason": completion.finish_reason,
        },
    )


def collect(
    variants: Sequence[Variant], outcomes: Sequence[Outcome], minimum: int
) -> list[tuple[Candidate, Outcome]] | LLMError:
    """The distinct non-empty candidates, or why there are fewer than ``minimum``."""
    kept: dict[str, tuple[Candidate, Outcome]] = {}
    errors = [o.error for o in outcomes if o.error is not None]
    for variant, outcome in zip(variants, outcomes, strict=True):
        if outcome.error is None and (text := reply(outcome)) and text not in kept:
            kept[text] = (candidate(variant, outcome), outcome)
    if len(kept) >= minimum:
        return list(kept.values())
    if errors:
        return errors[0]
    return LLMError(
        "too_few_candidates", f"{len(kept)} distinct non-empty replies, {minimum} needed"
    )


class ResponsesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(None, description="dataset directory; default: the seed tasks")
    n_candidates: int = Field(3, ge=1, le=16)
    min_candidates: int = Field(2, ge=1, description="fewer distinct replies fail the item")
    temperatures: list[float] = Field([0.2, 0.7, 1.0], min_length=1)
    system_prompts: list[str | None] = Field(default_factory=lambda: list(SYSTEM_PROMPTS))
    candidates: list[str] = Field(["generator"], min_length=1, description="backend roles")
    sft_reply: bool = Field(False, description="also put the first candidate as the reply")
    max_tokens: int = Field(256, ge=1)

    @model_validator(mode="after")
    def _reachable(self) -> ResponsesParams:
        if self.min_candidates > self.n_candidates:
            raise ValueError("min_candidates cannot exceed n_candidates")
        if any(not 0 <= t <= 2 for t in self.temperatures):
            raise ValueError("temperatures must be between 0 and 2")
        return self


class Responses:
    name = "responses"
    Params = ResponsesParams

    async def generate(
        self, ctx: Context, params: ResponsesParams, n: int
    ) -> AsyncIterator[Record | LLMError]:
        """One record per prompt; each prompt is used at most once, so a source with fewer
        than ``n`` prompts gives fewer than ``n`` items."""
        prompts = load_prompts(params.source)
        picked = cycle(prompts, min(n, len(prompts)), ctx.seed)
        engines = {role: ctx.engine(role) for role in params.candidates}
        size = 4 * min(e.concurrency for e in engines.values())
        for part in chunks(range(len(picked)), size):
            plans = [_variants(ctx, params, picked[i], i, len(picked)) for i in part]
            calls = [
                (k, j, request(picked[i], variant, params.max_tokens))
                for k, (i, plan) in enumerate(zip(part, plans, strict=True))
                for j, variant in enumerate(plan)
            ]
            done = await asyncio.gather(
                *(
                    _run(engine, [c for c in calls if plans[c[0]][c[1]].role == role])
                    for role, engine in engines.items()
                )
            )
            outcomes = {key: o for group in done for key, o in group}
            for k, (i, plan) in enumerate(zip(part, plans, strict=True)):
                got = collect(
                    plan, [outcomes[k, j] for j in range(len(plan))], params.min_candidates
                )
                yield got if isinstance(got, LLMError) else _record(ctx, picked[i], got, params)


def _variants(
    ctx: Context, params: ResponsesParams, prompt: Source, i: int, items: int
) -> list[Variant]:
    """Item ``i``'s candidates, their temperatures by the recipe's schedule if it has one."""
    k = params.n_candidates
    planned = variants(
        k,
        params.candidates,
        params.temperatures,
        params.system_prompts or [None],
        item_seed(ctx.seed, i),
    )
    about = {"domain": prompt.domain, "language": prompt.language}
    return [
        replace(v, temperature=ctx.temperature(i * k + j, items * k, v.temperature, attributes))
        for j, v in enumerate(planned)
        for attributes in [{**about, "candidate": str(j), "role": v.role}]
    ]


async def _run(
    engine: Engine, calls: list[tuple[int, int, ChatRequest]]
) -> list[tuple[tuple[int, int], Outcome]]:
    """One engine's calls, each outcome under its (item, candidate) key."""
    outcomes = [o async for o in engine.map(c for _, _, c in calls)]
    return [((k, j), o) for (k, j, _), o in zip(calls, outcomes, strict=True)]


def _record(
    ctx: Context, prompt: Source, got: list[tuple[Candidate, Outcome]], params: ResponsesParams
) -> Record:
    messages = list(prompt.messages)
    if params.sft_reply:
        messages.append(Message(role="assistant", content=got[0][0].content))
    return Record(
        messages=messages,
        candidates=[c for c, _ in got],
        task="responses",
        domain=prompt.domain,
        language=prompt.language,
        metadata={
            "n_candidates": len(got),
            "roles": sorted({str(c.metadata["role"]) for c, _ in got}),
        },
        provenance=ctx.provenance(CANDIDATE, [o for _, o in got], [prompt.id]),
    )


register(Responses())
