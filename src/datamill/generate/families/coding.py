"""Python exercises with a reference solution and unit tests that really run.

One structured call per record writes a problem, a function solving it and one-line
``assert`` tests; the schema caps each string, so a model that rambles still closes its
JSON. An answer that is not that JSON, or has an empty problem or solution, is a parse
failure. Every other answer is a record, verified (:func:`~datamill.generate.code_tests.verify`):
a static check (valid Python, the function is defined, every test is an assert calling
it), then the tests run in the sandbox: no network, no host files, limited time, memory
and processes. The verdict is ``checks["tests_pass"]`` (score: the share of tests passed;
``details``: each test's failure, the output, and the static problem if any) and
``metadata["tests_passed"]``; with ``keep_failing`` off a failed verdict is a
``tests_fail`` rejection instead. (topic, difficulty) pairs are drawn without replacement.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from datamill.errors import LLMError
from datamill.generate.code_tests import one_per_line, unfenced, verify
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
    version="2",
    system=(
        "You write Python programming exercises with a reference solution and unit tests. "
        'Answer in JSON with the fields "problem" (the task, naming the function and its '
        'arguments), "function_name", "solution" (Python code defining that function, '
        'standard library only, no input or printing) and "tests" (at least {{ min_tests }} '
        "one-line `assert` statements that call the function and check its result).\n"
        'For example: {"problem": "Write add(a, b) that returns the sum of a and b.", '
        '"function_name": "add", "solution": "def add(a, b):\\n    return a + b", '
        '"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", '
        '"assert add(0, 0) == 0"]}'
    ),
    user="Write a {{ difficulty }} exercise about {{ topic }}.",
)


class Exercise(BaseModel):
    problem: str = Field(description="the task statement")
    function_name: str = Field(description="the name of the function to write")
    solution: str = Field(description="Python code defining the function")
    tests: list[str] = Field(min_length=1, description="one-line assert statements")


@cache
def exercise_schema(min_tests: int, max_tokens: int) -> type[Exercise]:
    """:class:`Exercise` with each string capped so that all fit in ``max_tokens``.

    Two characters a token is a safe floor for prose and code: a model that rambles is cut
    by the schema and still closes its JSON, instead of running out of tokens and being
    asked again (three times ``max_tokens`` of a small model's time, for a parse failure).
    """
    chars = 2 * max_tokens
    most = min_tests + 2
    test = Annotated[str, StringConstraints(min_length=1, max_length=max(40, chars // 4 // most))]
    schema: type[Exercise] = create_model(
        "Exercise",
        __base__=Exercise,
        problem=(str, Field(min_length=1, max_length=max(80, chars // 5))),
        function_name=(str, Field(min_length=1, max_length=60)),
        solution=(str, Field(min_length=1, max_length=max(200, chars // 2))),
        tests=(list[test], Field(min_length=min_tests, max_length=most)),  # type: ignore[valid-type]
    )
    return schema


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

        async def test(e: Exercise) -> CheckResult:
            args = (e.solution, e.function_name.strip(), e.tests, params.min_tests, limits)
            async with sandboxes:
                return await asyncio.to_thread(verify, *args, contained)

        engine = ctx.engine()
        schema = exercise_schema(params.min_tests, params.max_tokens)
        slots = plan(params.topics, params.difficulties, n, ctx.seed)
        slots = scheduled(ctx, slots, params.temperature, _attributes)
        for part in chunks(slots, 4 * engine.concurrency):
            requests = [_request(slot, params) for slot in part]
            outcomes = [o async for o in engine.map(requests, schema=schema)]
            read = [_read(outcome) for outcome in outcomes]
            runs = [test(e) for e in read if isinstance(e, Exercise)]
            verdicts = iter(await asyncio.gather(*runs))
            for slot, outcome, exercise in zip(part, outcomes, read, strict=True):
                if isinstance(exercise, LLMError):
                    yield exercise
                    continue
                check = next(verdicts)
                if not check.passed and not params.keep_failing:
                    why = check.details["problem"] or f"{check.score:.0%} of tests pass"
                    yield LLMError("tests_fail", str(why), raw=exercise.solution)
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


def _read(outcome: Outcome) -> Exercise | LLMError:
    """The exercise as it will be verified (code unfenced, one test a line), or why there is
    none to verify: a failed call or an answer that is not an exercise (a parse failure)."""
    if outcome.error is not None:
        return outcome.error
    exercise: Exercise = outcome.parsed
    solution = unfenced(exercise.solution)
    if not exercise.problem.strip() or not solution.strip():
        raw = outcome.completion.text if outcome.completion is not None else None
        return LLMError("invalid_output", "an empty problem or solution", raw=raw)
    return Exercise(
        problem=exercise.problem,
        function_name=exercise.function_name,
        solution=solution,
        tests=one_per_line(exercise.tests) or exercise.tests,
    )


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
            "tests_passed": round((check.score or 0) * len(exercise.tests)),  # none if unverifiable
            "tests_total": len(exercise.tests),
            "verified": bool(check.passed),
            "sandbox": "contained" if contained else "uncontained",
        },
        provenance=ctx.provenance(EXERCISE, [outcome]),
        checks={"tests_pass": check},
    )


register(Coding())
