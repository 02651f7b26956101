"""Self-Instruct (Wang et al., 2023): new tasks bootstrapped from a pool of seed tasks.

Each prompt shows tasks sampled from the pool (human seed tasks and, once there are some,
accepted generated ones) and asks for a new task as JSON. A candidate is kept only if it
passes the paper's filters (length, no images or files) and its ROUGE-L with every task
in the pool is below the threshold; kept tasks join the pool, so later prompts show them.
The pool grows after each batch of ``batch_size`` items, which makes a run independent of
how many calls the backend takes at once. A second call answers each kept task.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from datamill.errors import LLMError
from datamill.generate.family import Context, chunks, register
from datamill.generate.instructions import RESPONSE, answer, reply
from datamill.generate.novelty import NoveltyIndex
from datamill.generate.sampling import item_seed
from datamill.generate.sources import join_prompt, load_seed_tasks
from datamill.generate.template import PromptTemplate
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome
from datamill.records import Message, Record

TASK = PromptTemplate(
    name="self-instruct-task",
    version="1",
    user=(
        "Come up with a new task for an AI assistant. Here are some existing tasks:\n\n"
        "{% for t in examples %}Task {{ loop.index }}\nInstruction: {{ t.instruction }}\n"
        "{% if t.input %}Input: {{ t.input }}\n{% endif %}\n{% endfor %}"
        "Write task {{ examples | length + 1 }}: an instruction that differs from all of the "
        "above in topic and wording and can be answered in text. If it needs an input (a "
        "passage, a list, a question to work on), give one; otherwise leave the input empty. "
        'Answer as JSON: {"instruction": "...", "input": "..."}.'
    ),
)

# Words of tasks that a text-only model cannot do (the paper's filter list).
_MEDIA = re.compile(
    r"\b(images?|pictures?|photos?|graphs?|files?|maps?|draw|plot|go to|videos?|audio|"
    r"music|flowcharts?|diagrams?)\b",
    re.IGNORECASE,
)


class NewTask(BaseModel):
    instruction: str = Field(description="the new task's instruction")
    input: str = Field(description="the task's input, or an empty string")


def check_task(task: NewTask, min_words: int = 3, max_words: int = 150) -> str | None:
    """Why a generated task is unusable (a failure cause), or None if it may be kept."""
    instruction = task.instruction.strip()
    words = len(instruction.split())
    if words < min_words:
        return "too_short"
    if words > max_words:
        return "too_long"
    if not instruction[0].isalnum():
        return "malformed"
    if _MEDIA.search(instruction):
        return "needs_media"
    return None


@dataclass(frozen=True)
class Example:
    """A task shown in a prompt: a seed task, or a generated one named by its record's id."""

    id: str
    instruction: str
    input: str = ""
    generated: bool = False


def pick_examples(
    human: Sequence[Example],
    machine: Sequence[Example],
    num_human: int,
    num_machine: int,
    rng: random.Random,
) -> list[Example]:
    """``num_human + num_machine`` examples in a shuffled order; seed tasks make up for
    missing generated ones, as in the paper's first rounds."""
    chosen = rng.sample(list(machine), min(num_machine, len(machine)))
    total = min(num_human + num_machine, len(human) + len(chosen))
    chosen += rng.sample(list(human), total - len(chosen))
    rng.shuffle(chosen)
    return chosen


def accept(ask: Outcome, index: NoveltyIndex, key: str) -> NewTask | LLMError:
    """The generated task if it passes the filters and is novel; it then joins ``index``."""
    if ask.error is not None:
        return ask.error
    task: NewTask = ask.parsed
    if task.input.strip() == task.instruction.strip():  # small models echo the instruction
        task = NewTask(instruction=task.instruction, input="")
    raw = ask.completion.text if ask.completion is not None else None
    if (cause := check_task(task)) is not None:
        return LLMError(cause, f"rejected task: {task.instruction[:80]!r}", raw=raw)
    if (match := index.match(task.instruction)) is not None:
        return LLMError("not_novel", f"ROUGE-L {match[1]:.2f} with {match[0]}", raw=raw)
    index.add(key, task.instruction)
    return task


class SelfInstructParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed_tasks: str | None = Field(None, description="JSONL of seed tasks; default: shipped")
    num_human: int = Field(6, ge=0, description="seed tasks shown per prompt")
    num_machine: int = Field(2, ge=0, description="generated tasks shown per prompt")
    similarity_threshold: float = Field(0.7, gt=0, le=1, description="ROUGE-L that rejects")
    batch_size: int = Field(64, ge=1, description="items generated before the pool grows")
    respond: bool = Field(True, description="answer each task with a second call")
    temperature: float = Field(0.7, ge=0, le=2)
    task_max_tokens: int = Field(256, ge=1)
    max_tokens: int = Field(256, ge=1, description="of the response")


class SelfInstruct:
    name = "self_instruct"
    Params = SelfInstructParams

    async def generate(
        self, ctx: Context, params: SelfInstructParams, n: int
    ) -> AsyncIterator[Record | LLMError]:
        seeds = load_seed_tasks(params.seed_tasks)
        human = [Example(t.id, t.instruction, t.input) for t in seeds]
        machine: list[Example] = []
        index = NoveltyIndex(params.similarity_threshold)
        for seed_task in seeds:
            index.add(seed_task.id, seed_task.instruction)
        engine = ctx.engine()
        temperatures = [ctx.temperature(i, n, params.temperature, {}) for i in range(n)]
        for part in chunks(range(n), params.batch_size):
            shown = [
                pick_examples(
                    human,
                    machine,
                    params.num_human,
                    params.num_machine,
                    random.Random(item_seed(ctx.seed, i)),
                )
                for i in part
            ]
            asks = [
                _ask(item_seed(ctx.seed, i), temperatures[i], ex, params)
                for i, ex in zip(part, shown, strict=True)
            ]
            asked = [o async for o in engine.map(asks, schema=NewTask)]
            verdicts = [accept(o, index, f"item-{i}") for i, o in zip(part, asked, strict=True)]
            replies: dict[int, Outcome] = {}
            if params.respond:
                todo = {
                    k: answer(
                        join_prompt(task.instruction, task.input),
                        item_seed(ctx.seed, part[k]),
                        temperatures[part[k]],
                        params.max_tokens,
                    )
                    for k, task in enumerate(verdicts)
                    if isinstance(task, NewTask)
                }
                answered = [o async for o in engine.map(todo.values())]
                replies = dict(zip(todo, answered, strict=True))
            for k, task in enumerate(verdicts):
                if isinstance(task, LLMError):
                    yield task
                    continue
                outcomes = [asked[k], replies[k]] if params.respond else [asked[k]]
                if (error := outcomes[-1].error) is not None:
                    yield error
                    continue
                if params.respond and not reply(outcomes[-1]):
                    yield LLMError("empty_response", "the task got an empty answer")
                    continue
                record = _record(ctx, task, shown[k], outcomes)
                machine.append(Example(record.id, task.instruction, task.input, generated=True))
                yield record


def _ask(
    seed: int, temperature: float, examples: list[Example], params: SelfInstructParams
) -> ChatRequest:
    return ChatRequest(
        messages=TASK.render(examples=examples),
        temperature=temperature,
        max_tokens=params.task_max_tokens,
        seed=seed,
    )


def _record(
    ctx: Context, task: NewTask, examples: list[Example], outcomes: list[Outcome]
) -> Record:
    final = outcomes[-1].completion
    assert final is not None
    messages = [Message(role="user", content=join_prompt(task.instruction, task.input))]
    if len(outcomes) > 1:
        messages.append(Message(role="assistant", content=reply(outcomes[-1])))
    return Record(
        messages=messages,
        task="self_instruct",
        language="en",
        metadata={
            "instruction": task.instruction.strip(),
            "input": task.input.strip(),
            "machine_examples": sum(e.generated for e in examples),
            "task_template": f"{TASK.name}@{TASK.version}",
            "finish_reason": final.finish_reason,
        },
        provenance=ctx.provenance(
            RESPONSE if len(outcomes) > 1 else TASK, outcomes, [e.id for e in examples]
        ),
    )


register(SelfInstruct())
