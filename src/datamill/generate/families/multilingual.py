"""Conversations in many languages, low-resource ones included, with the language verified.

Two modes. ``direct`` asks the model to write a conversation in the target language about a
topic of a domain pack, for a persona. ``translate`` takes English conversations (a
dataset's records, or the shipped Self-Instruct seed tasks) and translates every turn.
Either way the result is checked with a language identifier: a conversation not in the
requested language is kept with ``checks["language"].passed`` false (``details``: the
language detected), for checks, routing or a human to act on; with ``keep_mismatched``
off it is a ``wrong_language`` rejection instead.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from datamill.errors import InputError, LLMError
from datamill.generate.dialogue import (
    DIRECT,
    TRANSLATE,
    dialogue_messages,
    dialogue_schema,
    translated_messages,
    translation_prompt,
    translation_schema,
)
from datamill.generate.family import Context, chunks, register, scheduled
from datamill.generate.packs import DomainPack, builtin_packs, load_pack
from datamill.generate.sampling import item_seed, spread
from datamill.generate.sources import Source, english_conversations, seed_conversations
from datamill.langid import LanguageIdentifier, language_name, supported
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome
from datamill.records import Record


@dataclass(frozen=True)
class Slot:
    language: str
    seed: int
    pack: DomainPack | None = None
    persona: str = ""
    topic: str = ""
    source: Source | None = None
    temperature: float = 0.8


def plan(params: MultilingualParams, n: int, seed: int) -> list[Slot]:
    """``n`` slots, round-robin over languages, each language's items without replacement."""
    rng = random.Random(seed)
    if params.mode == "direct":
        packs = [load_pack(d) for d in params.domains]
        items = [
            {"pack": p, "persona": persona, "topic": topic}
            for p in packs
            for persona, topic in itertools.product(p.personas, p.topics)
        ]
    else:
        pool = english_conversations(params.source) if params.source else seed_conversations()
        if not pool:
            raise InputError(str(params.source), None, None, "no English conversation to translate")
        items = [{"source": english} for english in pool]
    groups = [[(code, item) for item in items] for code in params.languages]
    return [
        Slot(code, seed=item_seed(seed, i), **item)
        for i, (code, item) in enumerate(spread(groups, n, rng))
    ]


def _request(slot: Slot, params: MultilingualParams) -> ChatRequest:
    language = params.name(slot.language)
    if slot.source is None:
        assert slot.pack is not None
        messages = DIRECT.render(
            language=language,
            exchanges=params.exchanges,
            topic=slot.topic,
            domain=slot.pack.name,
            persona=slot.persona,
        )
    else:
        messages = translation_prompt(slot.source, language)
    return ChatRequest(
        messages=messages,
        temperature=slot.temperature,
        max_tokens=params.max_tokens,
        seed=slot.seed,
    )


def _record(
    ctx: Context, slot: Slot, outcome: Outcome, params: MultilingualParams, lid: LanguageIdentifier
) -> Record | LLMError:
    parsed = outcome.parsed
    if slot.source is None:
        messages = dialogue_messages(parsed)
    else:
        messages = translated_messages(slot.source, parsed)
    if not all(m.content for m in messages):
        return LLMError("invalid_output", "an empty turn", raw=_text(outcome))
    check = lid.check([m.content or "" for m in messages], slot.language)
    if check.passed is False and not params.keep_mismatched:
        detail = f"expected {slot.language}, detected {check.details['detected']}"
        if "reason" in check.details:
            detail += f" ({check.details['reason']})"
        return LLMError("wrong_language", detail, raw=_text(outcome))
    metadata: dict[str, JsonValue] = {
        "mode": params.mode,
        "language_name": params.name(slot.language),
    }
    if slot.pack is not None:
        domain = slot.pack.name
        metadata |= {"persona": slot.persona, "topic": slot.topic, "exchanges": params.exchanges}
        metadata |= {"risk_level": slot.pack.risk_level}
    else:
        assert slot.source is not None
        domain = slot.source.domain
        metadata |= {"source_language": "en", "source": params.source or "self_instruct"}
    assert outcome.completion is not None
    metadata["finish_reason"] = outcome.completion.finish_reason
    template = DIRECT if slot.source is None else TRANSLATE
    parents = [] if slot.source is None else [slot.source.id]
    return Record(
        messages=messages,
        task="multilingual",
        domain=domain,
        language=slot.language,
        metadata=metadata,
        provenance=ctx.provenance(template, [outcome], parents),
        checks={"language": check},
    )


def _text(outcome: Outcome) -> str | None:
    return outcome.completion.text if outcome.completion is not None else None


async def generate(
    ctx: Context, slots: Sequence[Slot], params: MultilingualParams
) -> AsyncIterator[Record | LLMError]:
    """Yield a record per slot, in slot order, or the error that made that slot fail."""
    engine = ctx.engine()
    lid = LanguageIdentifier(params.languages, params.min_confidence)  # before any call
    for part in chunks(slots, 4 * engine.concurrency):
        for schema, group in itertools.groupby(part, key=lambda s: _schema(s, params)):
            group = list(group)
            outcomes = engine.map([_request(slot, params) for slot in group], schema=schema)
            async for outcome in outcomes:
                slot = group.pop(0)
                yield outcome.error or _record(ctx, slot, outcome, params, lid)


def _schema(slot: Slot, params: MultilingualParams) -> type[BaseModel]:
    if slot.source is None:
        return dialogue_schema(params.exchanges, params.max_tokens)
    return translation_schema(len(slot.source.messages))


class MultilingualParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["direct", "translate"] = "direct"
    languages: list[str] = Field(
        default_factory=lambda: ["de", "fr", "es", "sw", "yo", "zu"],
        min_length=1,
        description="ISO 639-1 codes of the target languages",
    )
    language_names: dict[str, str] = Field(
        default_factory=dict,
        description="names of languages the identifier has no model for (their records "
        "are kept unverified: checks.language.passed is null)",
    )
    domains: list[str] = Field(default_factory=builtin_packs, description="direct mode")
    exchanges: int = Field(1, ge=1, le=3, description="direct mode: user/assistant pairs")
    source: str | None = Field(
        None, description="translate mode: a dataset directory (default: the seed tasks)"
    )
    min_confidence: float = Field(
        0.5, ge=0, le=1, description="the least confidence in the expected language to pass"
    )
    keep_mismatched: bool = Field(True, description="else a wrong language is a rejection")
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(768, ge=32)

    @model_validator(mode="after")
    def _known_languages(self) -> MultilingualParams:
        known = supported()
        for code in self.languages:
            if code not in known and code not in self.language_names:
                raise ValueError(
                    f"no language model for '{code}': give its name in language_names to "
                    f"generate it unverified; identifiable: {', '.join(sorted(known))}"
                )
        if self.mode == "translate" and "en" in self.languages:
            raise ValueError("translate mode translates from English: 'en' is no target")
        return self

    def name(self, code: str) -> str:
        return self.language_names.get(code) or language_name(code) or code


class Multilingual:
    name = "multilingual"
    Params = MultilingualParams

    def generate(
        self, ctx: Context, params: MultilingualParams, n: int
    ) -> AsyncIterator[Record | LLMError]:
        slots = scheduled(ctx, plan(params, n, ctx.seed), params.temperature, attributes)
        return generate(ctx, slots, params)


def attributes(slot: Slot) -> dict[str, str | None]:
    """What a temperature schedule may key on."""
    if slot.source is not None:
        return {"language": slot.language, "domain": slot.source.domain}
    assert slot.pack is not None
    return {
        "language": slot.language,
        "domain": slot.pack.name,
        "persona": slot.persona,
        "topic": slot.topic,
    }


register(Multilingual())
