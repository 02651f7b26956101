"""Customer support conversations between a simulated customer and a support agent.

Each conversation is one combination of a company policy, a scenario and a customer
persona (mood, patience, expertise), sampled without replacement. It is generated turn by
turn: the customer simulator (role ``customer``) writes a message, the agent (role
``agent``; both fall back to ``generator``) answers as structured output that says whether
it hands the conversation to a human. An escalation ends the conversation. The policy
stays in the system message of the record.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from pydantic import Field, model_validator

from datamill.errors import LLMError
from datamill.generate.conversation import check_conversation, engine_for, load_data, select
from datamill.generate.family import Context, chunks, register, scheduled
from datamill.generate.sampling import item_seed, sample
from datamill.generate.support_chat import (
    AGENT,
    AGENT_FORMAT,
    CUSTOMER,
    OPENING,
    AgentTurn,
    Data,
    Policy,
    Scenario,
    SupportData,
    parse_customer,
)
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome
from datamill.records import Message, Record


@dataclass(frozen=True)
class Slot:
    policy: Policy
    scenario: Scenario
    mood: str
    patience: str
    expertise: str
    exchanges: int
    seed: int
    temperature: float = 0.8


def plan(data: SupportData, n: int, seed: int, min_turns: int, max_turns: int) -> list[Slot]:
    axes = [data.policies, data.scenarios, data.moods, data.patience, data.expertise]
    return [
        Slot(*combo, exchanges=random.Random(s).randint(min_turns, max_turns), seed=s)
        for i, combo in enumerate(sample(axes, n, seed))
        for s in [item_seed(seed, i)]
    ]


@dataclass
class Chat:
    """One conversation in progress: customer turns are ``user``, agent turns ``assistant``."""

    slot: Slot
    turns: list[Message] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    escalated: bool = False
    error: LLMError | None = None

    @property
    def open(self) -> bool:
        replies = sum(m.role == "assistant" for m in self.turns)
        return self.error is None and not self.escalated and replies < self.slot.exchanges

    def system(self) -> Message:
        return AGENT.render(**_variables(self.slot), message="")[0]


def _variables(slot: Slot) -> dict[str, str]:
    policy = slot.policy
    return {
        "company": policy.company,
        "product": policy.product,
        "policy": policy.text.strip(),
        "scenario": slot.scenario.description,
        "mood": slot.mood,
        "patience": slot.patience,
        "expertise": slot.expertise,
    }


def attributes(slot: Slot) -> dict[str, str]:
    """What a temperature schedule may key on."""
    return {
        "policy": slot.policy.id,
        "scenario": slot.scenario.id,
        "mood": slot.mood,
        "patience": slot.patience,
        "expertise": slot.expertise,
    }


def _customer_request(chat: Chat, max_tokens: int) -> ChatRequest:
    prompt = CUSTOMER.render(**_variables(chat.slot), opening=OPENING)
    # The simulator sees the chat from the customer's side: its own turns are its replies.
    flipped = [
        Message(role="assistant" if m.role == "user" else "user", content=m.content)
        for m in chat.turns
    ]
    return _request(chat, [*prompt, *flipped], max_tokens)


def _agent_request(chat: Chat, max_tokens: int) -> ChatRequest:
    instructed = Message(role="system", content=f"{chat.system().content}\n\n{AGENT_FORMAT}")
    return _request(chat, [instructed, *chat.turns], max_tokens)


def _request(chat: Chat, messages: list[Message], max_tokens: int) -> ChatRequest:
    slot = chat.slot
    return ChatRequest(
        messages=messages,
        temperature=slot.temperature,
        max_tokens=max_tokens,
        seed=slot.seed + len(chat.turns),
    )


async def generate(
    ctx: Context, slots: Sequence[Slot], max_tokens: int = 200
) -> AsyncIterator[Record | LLMError]:
    """Yield a record (or the error that ended it) per slot, in slot order.

    The conversations of a chunk advance together, one turn at a time, so that all of a
    turn's calls are in flight at once.
    """
    customer, agent = engine_for(ctx, "customer"), engine_for(ctx, "agent")
    for part in chunks(slots, 4 * agent.concurrency):
        chats = [Chat(slot) for slot in part]
        while active := [c for c in chats if c.open]:
            asks = [_customer_request(c, max_tokens) for c in active]
            asked = [o async for o in customer.map(asks)]
            for chat, outcome in zip(active, asked, strict=True):
                if (text := _take(chat, outcome)) is None:
                    continue
                if (message := parse_customer(text)) is None:
                    chat.error = LLMError("invalid_output", "no customer message", raw=text)
                else:
                    chat.turns.append(Message(role="user", content=message))
            active = [c for c in active if c.error is None]
            answers = [_agent_request(c, max_tokens) for c in active]
            answered = [o async for o in agent.map(answers, schema=AgentTurn)]
            for chat, outcome in zip(active, answered, strict=True):
                if _take(chat, outcome) is not None:
                    turn: AgentTurn = outcome.parsed
                    chat.turns.append(Message(role="assistant", content=turn.reply.strip()))
                    chat.escalated = turn.escalate
        for chat in chats:
            yield chat.error or _record(ctx, chat)


def _take(chat: Chat, outcome: Outcome) -> str | None:
    """The outcome's text, kept in the chat's history; or its error, set on the chat."""
    if outcome.error is not None:
        chat.error = outcome.error
        return None
    assert outcome.completion is not None
    chat.outcomes.append(outcome)
    return outcome.completion.text


def _record(ctx: Context, chat: Chat) -> Record | LLMError:
    messages = [chat.system(), *chat.turns]
    if (problem := check_conversation(messages)) is not None:
        return LLMError("invalid_conversation", problem)
    slot = chat.slot
    return Record(
        messages=messages,
        task="support",
        domain="customer_support",
        language="en",
        metadata={
            "persona": {"mood": slot.mood, "patience": slot.patience, "expertise": slot.expertise},
            "scenario": slot.scenario.id,
            "scenario_description": slot.scenario.description,
            "policy_id": slot.policy.id,
            "company": slot.policy.company,
            "escalated": chat.escalated,
            "escalation_policy": slot.scenario.escalation,
            "exchanges": sum(m.role == "assistant" for m in chat.turns),
            "planned_exchanges": slot.exchanges,
            "customer_template": f"{CUSTOMER.name}@{CUSTOMER.version}",
        },
        provenance=ctx.provenance(AGENT, chat.outcomes),
    )


class SupportParams(Data):
    scenarios: str = Field("support", description="built-in scenario file or a YAML path")
    policies: list[str] | None = Field(None, description="policy ids to use (default: all)")
    only: list[str] | None = Field(None, description="scenario ids to use (default: all)")
    min_turns: int = Field(2, ge=1, le=10, description="fewest customer/agent exchanges")
    max_turns: int = Field(4, ge=1, le=10, description="most customer/agent exchanges")
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(200, ge=1)

    @model_validator(mode="after")
    def _turns(self) -> SupportParams:
        if self.min_turns > self.max_turns:
            raise ValueError("min_turns is above max_turns")
        return self


class Support:
    name = "support"
    Params = SupportParams

    def generate(
        self, ctx: Context, params: SupportParams, n: int
    ) -> AsyncIterator[Record | LLMError]:
        data = load_data(params.scenarios, "scenarios", SupportData)
        data = data.model_copy(
            update={
                "policies": select(data.policies, params.policies, "policies"),
                "scenarios": select(data.scenarios, params.only, "scenarios"),
            }
        )
        slots = plan(data, n, ctx.seed, params.min_turns, params.max_turns)
        slots = scheduled(ctx, slots, params.temperature, attributes)
        return generate(ctx, slots, params.max_tokens)


register(Support())
