"""Domain instructions and their responses, from domain packs and personas.

Two model calls per record: one writes a question a persona would ask about a topic of the
domain, the other answers it. Combinations of (domain, persona, topic) are sampled without
replacement so that a run covers the packs evenly before it repeats anything.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from datamill.generate.packs import DomainPack
from datamill.generate.template import PromptTemplate
from datamill.llm.base import Backend, ChatRequest
from datamill.records import Message, Provenance, Record

INSTRUCTION = PromptTemplate(
    name="domain-instruction",
    version="1",
    user=(
        "You are {{ persona }}. Write one specific question you would ask an expert "
        "about {{ topic }} ({{ domain }}). Reply with the question only."
    ),
)
RESPONSE = PromptTemplate(
    name="domain-response",
    version="1",
    system="You are a careful {{ domain }} assistant. Answer clearly and briefly.",
    user="{{ instruction }}",
)


@dataclass(frozen=True)
class Slot:
    """One combination of attributes to generate an example for."""

    domain: DomainPack
    persona: str
    topic: str
    seed: int


def plan(packs: Sequence[DomainPack], n: int, seed: int = 0) -> list[Slot]:
    """``n`` slots, round-robin over domains, each domain's combinations without replacement."""
    rng = random.Random(seed)
    pools = []
    for pack in packs:
        combos = list(itertools.product(pack.personas, pack.topics))
        rng.shuffle(combos)
        pools.append((pack, itertools.cycle(combos)))
    slots = []
    for i in range(n):
        pack, combos = pools[i % len(pools)]
        persona, topic = next(combos)
        slots.append(Slot(pack, persona, topic, seed=seed * 1_000_003 + i))
    return slots


_PREFIX = re.compile(r"^\s*(question|q)\s*[:.-]\s*", re.IGNORECASE)


def parse_instruction(text: str) -> str | None:
    """The question from the model's reply: the first non-empty line, unquoted."""
    for line in text.strip().splitlines():
        line = _PREFIX.sub("", line).strip().strip('"').strip()
        if line:
            return line
    return None


async def generate(
    backend: Backend,
    slots: Sequence[Slot],
    recipe: str | None = None,
    temperature: float = 0.8,
    max_tokens: int = 160,
) -> AsyncIterator[Record | str]:
    """Yield a record per slot, or a string saying why that slot failed."""
    for slot in slots:
        variables = {"domain": slot.domain.name, "persona": slot.persona, "topic": slot.topic}
        ask = ChatRequest(
            messages=INSTRUCTION.render(**variables),
            temperature=temperature,
            max_tokens=64,
            seed=slot.seed,
        )
        asked = await backend.complete(ask)
        instruction = parse_instruction(asked.text)
        if instruction is None:
            yield "empty instruction"
            continue
        answer = ChatRequest(
            messages=RESPONSE.render(**variables, instruction=instruction),
            temperature=temperature,
            max_tokens=max_tokens,
            seed=slot.seed,
        )
        completion = await backend.complete(answer)
        yield Record(
            messages=[
                *answer.messages,
                Message(role="assistant", content=completion.text.strip()),
            ],
            task="instruction",
            domain=slot.domain.name,
            language="en",
            metadata={
                **variables,
                "risk_level": slot.domain.risk_level,
                "instruction_template": f"{INSTRUCTION.name}@{INSTRUCTION.version}",
                "finish_reason": completion.finish_reason,
                "prompt_tokens": asked.prompt_tokens + completion.prompt_tokens,
                "completion_tokens": asked.completion_tokens + completion.completion_tokens,
                "llm_seconds": round(asked.seconds + completion.seconds, 3),
            },
            provenance=Provenance(
                source="synthetic",
                model=completion.model,
                backend=completion.backend,
                template=RESPONSE.name,
                template_version=RESPONSE.version,
                params=answer.sampling(),
                seed=slot.seed,
                recipe=recipe,
            ),
        )
