"""Python exercises with a reference solution and unit tests that really run.

One structured call per record writes a problem, a function solving it and one-line
``assert`` tests. The solution and tests are checked statically (valid Python, the
function is defined, every test is an assert calling it), then run in the sandbox
(:mod:`datamill.generate.code_tests`): no network, no host files, limited time, memory
and processes.
The verdict is ``checks["tests_pass"]`` (score: the share of tests passed) and
``metadata["tests_passed"]``. (topic, difficulty) pairs are drawn without replacement.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from datamill.errors import LLMError
from datamill.generate.code_tests import check_solution, run_tests
from datamill.generate.family import Context, chunks, register, scheduled
from datamill.generate.sampling import item_seed
from datamill.generate.template import PromptTemplate
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome
from datamill.records import CheckResult, Message, Record
from datamill.sandbox import Limits, SandboxUnavailable, check_containment

TOPICS = [
    "string manipulation", "lists and sorting", "dictionaries and counting", "recursion",
    "dynamic programming", "parsing structured text", "number theory", "stacks and queues",
    "intervals and ranges", "grids and matrices", "bit manipulation", "binary search",
    "graph traversal", "greedy algorithms", "dates and times", "sets and deduplication",
]  # fmt: skip
EXERCISE = PromptTemplate(
    name="coding-exercise",
    version="1",
    system=(
        "You write Python programming exercises with a reference solution and unit tests. "
        'Answer in JSON with the fields "problem" (the task, naming the function and its '
        'arguments), "function_name", "solution" (Python code defining that function, '
        'standard library only, no input or printing) and "tests" (at least {{ min_tests }} '
        "one-line `assert` statements that call the function and check its result)."
    ),
    user="Write a {{ difficulty }} exercise about {{ topic }}.",
)


class Exercise(BaseModel):
    problem: str = Field(description="the task statement")
    function_name: str = Field(description="the name of the function to write")
    solution: str = Field(description="Python code defining the function")
    tests: list[str] = Field(min_length=1, description="one-line assert statements")


@dataclass(frozen=True)
class Slot:
    topic: str
    difficulty: str
    seed: int
    temperature: float = 0.7


def plan(topics: Sequence[str], difficulties: Sequence[str], n: int, seed: int) -> list[Slot]:
    """``n`` (topic, difficulty) pairs, all pairs once in a shuffled order before any twice."""
    pairs = list(itertools.product(topics, difficulties))
    random.Random(seed).shuffle(pairs)
    cycle = itertools.cycle(pairs)
    return [Slot(*next(cycle), seed=item_seed(seed, i)) for i in range(n)]


class CodingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topics: list[str] = Field(default_factory=lambda: list(TOPICS), min_length=1)
    difficulties: list[str] = Field(default_factory=lambda: ["easy", "medium", "hard"])
    min_tests: int = Field(3, ge=1)
    keep_failing: bool = Field(True, description="else failing tests make the item a failure")
    timeout_seconds: float = Field(10.0, gt=0, description="wall-clock limit of a test run")
    memory_mb: int = Field(512, ge=64, description="address space of a test run")
    sandboxes: int = Field(2, ge=1, description="test runs at once")
    allow_uncontained: bool = Field(
        False, description="run tests without isolation where the sandbox cannot be built"
    )
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(768, ge=16)


class Coding:
    name = "coding"
    Params = CodingParams

    async def generate(
        self, ctx: Context, params: CodingParams, n: int
    ) -> AsyncIterator[Record | LLMError]:
        contained = _containment(params.allow_uncontained)
        limits = Limits(
            wall_seconds=params.timeout_seconds,
            cpu_seconds=max(1, int(params.timeout_seconds)),
            memory_bytes=params.memory_mb * 1024**2,
        )
        sandboxes = asyncio.Semaphore(params.sandboxes)

        async def test(exercise: Exercise) -> CheckResult:
            async with sandboxes:
                return await asyncio.to_thread(
                    run_tests, exercise.solution, exercise.tests, limits, contained
                )

        engine = ctx.engine()
        slots = plan(params.topics, params.difficulties, n, ctx.seed)
        slots = scheduled(ctx, slots, params.temperature, _attributes)
        for part in chunks(slots, 4 * engine.concurrency):
            requests = [_request(slot, params) for slot in part]
            outcomes = [o async for o in engine.map(requests, schema=Exercise)]
            checked = [_valid(outcome, params.min_tests) for outcome in outcomes]
            runs = [test(e) for e in checked if isinstance(e, Exercise)]
            verdicts = iter(await asyncio.gather(*runs))
            for slot, outcome, exercise in zip(part, outcomes, checked, strict=True):
                if isinstance(exercise, LLMError):
                    yield exercise
                    continue
                check = next(verdicts)
                if not check.passed and not params.keep_failing:
                    yield LLMError(
                        "tests_fail", f"{check.score:.0%} of tests pass", raw=exercise.solution
                    )
                    continue
                yield _record(ctx, slot, outcome, exercise, check, contained)


def _containment(allow_uncontained: bool) -> bool:
    """Whether tests run contained; raises when they cannot and the recipe did not opt out."""
    try:
        check_containment()
        return True
    except SandboxUnavailable:
        if allow_uncontained:
            return False
        raise


def _request(slot: Slot, params: CodingParams) -> ChatRequest:
    return ChatRequest(
        messages=EXERCISE.render(
            topic=slot.topic, difficulty=slot.difficulty, min_tests=params.min_tests
        ),
        temperature=slot.temperature,
        max_tokens=params.max_tokens,
        seed=slot.seed,
    )


def _attributes(slot: Slot) -> dict[str, str]:
    return {"topic": slot.topic, "difficulty": slot.difficulty}


def _valid(outcome: Outcome, min_tests: int) -> Exercise | LLMError:
    if outcome.error is not None:
        return outcome.error
    exercise: Exercise = outcome.parsed
    name = exercise.function_name.strip()
    if (problem := check_solution(exercise.solution, name, exercise.tests, min_tests)) is not None:
        raw = outcome.completion.text if outcome.completion is not None else None
        return LLMError("invalid_output", problem, raw=raw)
    return exercise


def _record(
    ctx: Context,
    slot: Slot,
    outcome: Outcome,
    exercise: Exercise,
    check: CheckResult,
    contained: bool,
) -> Record:
    solution = exercise.solution.strip()
    return Record(
        messages=[
            Message(role="user", content=exercise.problem.strip()),
            Message(role="assistant", content=f"```python\n{solution}\n```"),
        ],
        task="coding",
        domain="programming",
        language="en",
        metadata={
            "topic": slot.topic,
            "difficulty": slot.difficulty,
            "function_name": exercise.function_name.strip(),
            "solution": solution,
            "tests": list(exercise.tests),
            "tests_passed": check.details["passed_tests"],
            "tests_total": len(exercise.tests),
            "verified": bool(check.passed),
            "sandbox": "contained" if contained else "uncontained",
        },
        provenance=ctx.provenance(EXERCISE, [outcome]),
        checks={"tests_pass": check},
    )


register(Coding())
