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

from pydantic import BaseModel, ConfigDict, Field

from datamill.errors import LLMError
from datamill.generate.family import Context, chunks, register, scheduled
from datamill.generate.packs import DomainPack, builtin_packs, load_pack
from datamill.generate.sampling import item_seed
from datamill.generate.template import PromptTemplate
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome
from datamill.records import Message, Record

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
    temperature: float = 0.8


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
        slots.append(Slot(pack, persona, topic, seed=item_seed(seed, i)))
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
    ctx: Context,
    slots: Sequence[Slot],
    max_tokens: int = 160,
) -> AsyncIterator[Record | LLMError]:
    """Yield a record per slot, in slot order, or the error that made that slot fail.

    Slots go through in chunks, each chunk's questions first and then their answers, so
    that every call of a chunk is in flight at once and memory stays bounded.
    """
    engine = ctx.engine()
    for part in chunks(slots, 4 * engine.concurrency):
        asks = [_ask(slot) for slot in part]
        asked = [o async for o in engine.map(asks)]
        answers = {}
        for i, (slot, outcome) in enumerate(zip(part, asked, strict=True)):
            if outcome.completion is not None:
                instruction = parse_instruction(outcome.completion.text)
                if instruction is not None:
                    answers[i] = _answer(slot, instruction, max_tokens)
        answered = dict(zip(answers, [o async for o in engine.map(answers.values())], strict=True))
        for i, (slot, ask) in enumerate(zip(part, asked, strict=True)):
            if ask.error is not None:
                yield ask.error
            elif i not in answered:
                yield LLMError("invalid_output", "no question in the reply", raw=_text(ask))
            elif (answer := answered[i]).error is not None:
                yield answer.error
            else:
                yield _record(ctx, slot, ask, answer)


def variables(slot: Slot) -> dict[str, str]:
    """What the prompts say about a slot; also the attributes a schedule may key on."""
    return {"domain": slot.domain.name, "persona": slot.persona, "topic": slot.topic}


def _ask(slot: Slot) -> ChatRequest:
    return ChatRequest(
        messages=INSTRUCTION.render(**variables(slot)),
        temperature=slot.temperature,
        max_tokens=64,
        seed=slot.seed,
    )


def _answer(slot: Slot, instruction: str, max_tokens: int) -> ChatRequest:
    return ChatRequest(
        messages=RESPONSE.render(**variables(slot), instruction=instruction),
        temperature=slot.temperature,
        max_tokens=max_tokens,
        seed=slot.seed,
    )


def _text(outcome: Outcome) -> str | None:
    return outcome.completion.text if outcome.completion is not None else None


def _record(ctx: Context, slot: Slot, ask: Outcome, answer: Outcome) -> Record:
    completion = answer.completion
    assert completion is not None
    return Record(
        messages=[
            *answer.request.messages,
            Message(role="assistant", content=completion.text.strip()),
        ],
        task="instruction",
        domain=slot.domain.name,
        language="en",
        metadata={
            **variables(slot),
            "risk_level": slot.domain.risk_level,
            "instruction_template": f"{INSTRUCTION.name}@{INSTRUCTION.version}",
            "finish_reason": completion.finish_reason,
        },
        provenance=ctx.provenance(RESPONSE, [ask, answer]),
    )


class DomainInstructionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domains: list[str] = Field(
        default_factory=builtin_packs, description="built-in pack names or paths to YAML packs"
    )
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(160, ge=1)


class DomainInstructions:
    name = "domain_instructions"
    Params = DomainInstructionsParams

    def generate(
        self, ctx: Context, params: DomainInstructionsParams, n: int
    ) -> AsyncIterator[Record | LLMError]:
        slots = plan([load_pack(d) for d in params.domains], n, ctx.seed)
        slots = scheduled(ctx, slots, params.temperature, variables)
        return generate(ctx, slots, params.max_tokens)


register(DomainInstructions())
