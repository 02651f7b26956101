"""Enterprise workflows: multi-step tasks carried out with tool calls in OpenAI's format.

An item is a task of a tool catalogue with its values filled in, offered the task's tools
and a few distractors. The model plans the next tool calls as structured output, step by
step; datamill checks every call against its tool's JSON schema (an invalid call is
malformed output: the item fails with cause ``invalid_tool_call``, a parse failure; no
call at all is a ``no_tool_call`` rejection), simulates the results from the arguments,
and at the end asks for the final answer. ``checks["tool_use"]`` says whether every tool
the task needs was called (score: the share called; ``metadata["verification"]`` holds
the same counts): a workflow that skipped one is kept with the check failed. Records have
the OpenAI message shape (assistant ``tool_calls``, ``tool`` results by ``tool_call_id``)
and keep the offered tool definitions in ``metadata["tools"]`` for exports.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from datamill.errors import LLMError
from datamill.generate.conversation import check_conversation, load_data, select
from datamill.generate.family import Context, chunks, register, scheduled
from datamill.generate.sampling import item_seed, sample
from datamill.generate.template import PromptTemplate
from datamill.generate.toolcalls import (
    Catalogue,
    PlannedCall,
    Task,
    Tool,
    call_id,
    check_call,
    plan_schema,
    simulate,
)
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome
from datamill.records import CheckResult, FunctionCall, Message, Record, ToolCall

SYSTEM = (
    "You are an operations assistant at {{ company }}. Use the tools to carry out the "
    "user's request, then tell the user what you did."
)
PLAN = PromptTemplate(
    name="workflow-plan",
    version="1",
    system=(
        SYSTEM + "\nTools:\n{% for line in signatures %}- {{ line }}\n{% endfor %}"
        'Answer in JSON: {"calls": [{"name": a tool, "arguments": {...}}]}, with an empty '
        "list when no more calls are needed."
    ),
    user=(
        "Task: {{ request }}\n{% if history %}Calls made so far, with results:\n"
        "{{ history }}\n{% endif %}Which tool calls come next?"
    ),
)
ANSWER = PromptTemplate(
    name="workflow-answer",
    version="1",
    system=SYSTEM,
    user=(
        "Task: {{ request }}\nCalls made, with results:\n{{ history }}\n"
        "Write your final reply to the user: what you did and the outcome, briefly."
    ),
)


@dataclass(frozen=True)
class Slot:
    task: Task
    request: str
    tools: tuple[Tool, ...]
    seed: int
    temperature: float = 0.3


def plan(catalogue: Catalogue, n: int, seed: int = 0, distractors: int = 2) -> list[Slot]:
    """``n`` items: tasks without replacement, each with its values and offered tools."""
    slots = []
    for i, (task,) in enumerate(sample([catalogue.tasks], n, seed)):
        rng = random.Random(item_seed(seed, i))
        values = {name: rng.choice(options) for name, options in sorted(catalogue.values.items())}
        others = [tool for tool in catalogue.tools if tool.name not in task.tools]
        offered = [catalogue.tool(name) for name in task.tools]
        offered += rng.sample(others, min(distractors, len(others)))
        rng.shuffle(offered)
        request = task.request.format_map(values)
        slots.append(Slot(task, request, tuple(offered), item_seed(seed, i)))
    return slots


@dataclass
class Run:
    """One workflow in progress: the tool-call turns so far and the calls behind them."""

    slot: Slot
    company: str
    steps: list[Message] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    made: set[str] = field(default_factory=set)
    outcomes: list[Outcome] = field(default_factory=list)
    answer: Outcome | None = None
    done: bool = False
    error: LLMError | None = None

    def variables(self) -> dict[str, Any]:
        return {
            "company": self.company,
            "signatures": [tool.signature() for tool in self.slot.tools],
            "request": self.slot.request,
            "history": "\n".join(self.history),
        }

    def advance(self, step: int, outcome: Outcome) -> None:
        """Check the planned calls, then add them and their simulated results."""
        if outcome.error is not None:
            self.error = outcome.error
            return
        self.outcomes.append(outcome)
        tools = {tool.name: tool for tool in self.slot.tools}
        # A call made before with the same arguments is dropped: models tend to repeat.
        unique = {_show(call): call for call in outcome.parsed.calls}
        calls = [call for key, call in unique.items() if key not in self.made]
        for call in calls:
            if (problem := check_call(tools, call.name, call.arguments)) is not None:
                raw = outcome.completion.text if outcome.completion else None
                self.error = LLMError("invalid_tool_call", problem, raw=raw)
                return
        if not calls:
            self.done = True
            if step == 0:
                self.error = LLMError("no_tool_call", "no tool call for a task that needs tools")
            return
        ids = [call_id(self.slot.seed, step, i) for i in range(len(calls))]
        functions = [FunctionCall(name=c.name, arguments=json.dumps(c.arguments)) for c in calls]
        tool_calls = [ToolCall(id=i, function=f) for i, f in zip(ids, functions, strict=True)]
        self.steps.append(Message(role="assistant", tool_calls=tool_calls))
        for i, call in zip(ids, calls, strict=True):
            result = json.dumps(simulate(tools[call.name], call.arguments))
            self.steps.append(Message(role="tool", name=call.name, tool_call_id=i, content=result))
            self.made.add(_show(call))
            self.history.append(f"{_show(call)} -> {result}")


def _show(call: PlannedCall) -> str:
    return f"{call.name}({json.dumps(call.arguments, sort_keys=True)})"


async def generate(
    ctx: Context,
    slots: Sequence[Slot],
    company: str,
    schema: type[BaseModel],
    max_steps: int = 3,
    max_tokens: int = 300,
) -> AsyncIterator[Record | LLMError]:
    """Yield a record (or the error that ended it) per slot, in slot order."""
    engine = ctx.engine()
    for part in chunks(slots, 4 * engine.concurrency):
        runs = [Run(slot, company) for slot in part]
        for step in range(max_steps):
            active = [r for r in runs if r.error is None and not r.done]
            asks = [_request(PLAN, r, max_tokens, step) for r in active]
            planned = [o async for o in engine.map(asks, schema=schema)]
            for run, outcome in zip(active, planned, strict=True):
                run.advance(step, outcome)
        active = [r for r in runs if r.error is None]
        asks = [_request(ANSWER, r, max_tokens, max_steps) for r in active]
        answered = [o async for o in engine.map(asks)]
        for run, outcome in zip(active, answered, strict=True):
            run.answer = outcome
        for run in runs:
            yield run.error or _record(ctx, run)


def _request(template: PromptTemplate, run: Run, max_tokens: int, step: int) -> ChatRequest:
    return ChatRequest(
        messages=template.render(**run.variables()),
        temperature=run.slot.temperature,
        max_tokens=max_tokens,
        seed=run.slot.seed + step,
    )


def _record(ctx: Context, run: Run) -> Record | LLMError:
    answer = run.answer
    assert answer is not None
    if answer.error is not None:
        return answer.error
    assert answer.completion is not None
    system = ANSWER.render(**run.variables())[0]
    messages = [
        system,
        Message(role="user", content=run.slot.request),
        *run.steps,
        Message(role="assistant", content=answer.completion.text.strip()),
    ]
    if (problem := check_conversation(messages)) is not None:
        return LLMError("invalid_output", problem, raw=answer.completion.text)
    task = run.slot.task
    used = list(dict.fromkeys(c.function.name for m in run.steps for c in m.tool_calls or []))
    verification: dict[str, JsonValue] = {
        "calls": sum(len(m.tool_calls or []) for m in run.steps),
        "expected_tools": list(task.tools),
        "used_tools": list(used),
        "expected_tools_used": set(task.tools) <= set(used),
    }
    share = len(set(task.tools) & set(used)) / len(task.tools) if task.tools else 1.0
    check = CheckResult(
        passed=bool(verification["expected_tools_used"]), score=share, details=verification
    )
    return Record(
        messages=messages,
        task="workflow",
        domain="enterprise",
        language="en",
        metadata={
            "tools": [tool.openai() for tool in run.slot.tools],
            "workflow": task.id,
            "verification": verification,
            "plan_template": f"{PLAN.name}@{PLAN.version}",
        },
        provenance=ctx.provenance(ANSWER, [*run.outcomes, answer]),
        checks={"tool_use": check},
    )


class WorkflowsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    catalogue: str = Field("enterprise", description="built-in tool catalogue or a YAML path")
    only: list[str] | None = Field(None, description="task ids to use (default: all)")
    distractors: int = Field(2, ge=0, le=20, description="tools offered beyond those needed")
    max_steps: int = Field(3, ge=1, le=10, description="planning rounds before the answer")
    temperature: float = Field(0.3, ge=0, le=2)
    max_tokens: int = Field(300, ge=1)


class Workflows:
    name = "workflows"
    Params = WorkflowsParams

    def generate(
        self, ctx: Context, params: WorkflowsParams, n: int
    ) -> AsyncIterator[Record | LLMError]:
        catalogue = load_data(params.catalogue, "tools", Catalogue)
        tasks = select(catalogue.tasks, params.only, "tasks")
        slots = plan(catalogue.model_copy(update={"tasks": tasks}), n, ctx.seed, params.distractors)
        slots = scheduled(ctx, slots, params.temperature, lambda s: {"workflow": s.task.id})
        schema = plan_schema(catalogue.tools)
        return generate(ctx, slots, catalogue.company, schema, params.max_steps, params.max_tokens)


register(Workflows())
