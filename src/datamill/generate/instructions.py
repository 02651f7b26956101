"""What the instruction families share: drawing source prompts and answering them."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from datamill.generate.sources import Source
from datamill.generate.template import PromptTemplate
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome

# The answer to an instruction is the model's reply to it alone, as a user would send it.
RESPONSE = PromptTemplate(name="instruction-response", version="1", user="{{ prompt }}")


def cycle(prompts: Sequence[Source], n: int, seed: int) -> list[Source]:
    """``n`` prompts in a shuffled order, each used once before any is used again."""
    shuffled = list(prompts)
    random.Random(seed).shuffle(shuffled)
    return list(itertools.islice(itertools.cycle(shuffled), n))


def answer(prompt: str, seed: int, temperature: float, max_tokens: int) -> ChatRequest:
    return ChatRequest(
        messages=RESPONSE.render(prompt=prompt),
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
    )


def reply(outcome: Outcome) -> str:
    """The stripped text of a call's answer ("" for a failed call)."""
    return outcome.completion.text.strip() if outcome.completion is not None else ""
