"""The parts of a support conversation: company policies, scenarios and customer personas
(a data file, ``scenarios/support.yaml`` or the user's own), the prompts of the customer
simulator and of the agent, and the parsing of a simulated customer's message.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datamill.generate.template import PromptTemplate


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Policy(Data):
    id: str
    company: str
    product: str
    text: str


class Scenario(Data):
    id: str
    description: str
    escalation: Literal["expected", "allowed", "not_needed"] = "allowed"


class SupportData(Data):
    moods: list[str] = Field(min_length=1)
    patience: list[str] = Field(min_length=1)
    expertise: list[str] = Field(min_length=1)
    policies: list[Policy] = Field(min_length=1)
    scenarios: list[Scenario] = Field(min_length=1)


class AgentTurn(BaseModel):
    """The agent's structured answer: its message, and whether it hands over to a human."""

    reply: str = Field(min_length=1)
    escalate: bool


CUSTOMER = PromptTemplate(
    name="support-customer",
    version="1",
    system=(
        "You are a customer of {{ company }} ({{ product }}), chatting with its support. "
        "You {{ scenario }}. You are {{ mood }}, with {{ patience }}, and {{ expertise }}. "
        "Write only your own next chat message: one to three sentences, first person."
    ),
    user="{{ opening }}",
)
OPENING = "Write your first message to the support agent."
AGENT = PromptTemplate(
    name="support-agent",
    version="1",
    system=(
        "You are a customer support agent of {{ company }} ({{ product }}). "
        "Follow this policy exactly:\n{{ policy }}\n"
        "Be concise and kind. When the policy says to hand over to a human, tell the "
        "customer so."
    ),
    user="{{ message }}",
)
# Sent to the agent model only; the record keeps the plain system message above.
AGENT_FORMAT = (
    'Answer in JSON: {"reply": your message to the customer, "escalate": true only if you '
    "hand the conversation to a human now}."
)


_LABEL = re.compile(r"^\s*(customer|me|user)\s*:\s*", re.IGNORECASE)
_OTHER_SIDE = re.compile(r"^\s*(agent|support|assistant)\s*:", re.IGNORECASE | re.MULTILINE)


def parse_customer(text: str) -> str | None:
    """The customer's message: without a speaker label, quotes, or a made-up agent reply."""
    text = _OTHER_SIDE.split(text, maxsplit=1)[0]
    text = _LABEL.sub("", text.strip()).strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text or None
