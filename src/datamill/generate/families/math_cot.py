"""Step-by-step math solutions whose answers are verified, not trusted.

Two modes. ``programmatic``: a seeded generator builds a word problem and computes its
answer (:mod:`datamill.generate.math_problems`); the model solves it, and the record is
verified when the model's final answer equals the computed one and none of the
computations its steps state is wrong. ``written``: the model
writes a problem about a domain-pack topic and solves it; the record is verified when
every computation the solution states holds and the final answer is the result of one
(:mod:`datamill.generate.arithmetic`). Either way the verdict is ``checks["math_verified"]``
and ``metadata["verified"]``; unverified records are kept unless ``keep_unverified`` is off.
The schema caps the steps and their length (:func:`solution_schema`), so that a model that
loops still closes its JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import cache
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, create_model

from datamill.errors import LLMError
from datamill.generate import arithmetic
from datamill.generate.families.domain_instructions import Slot, plan, variables
from datamill.generate.family import Context, chunks, register
from datamill.generate.math_problems import Kind, Problem, make_problem
from datamill.generate.packs import builtin_packs, load_pack
from datamill.generate.sampling import item_seed
from datamill.generate.template import PromptTemplate
from datamill.llm.base import ChatRequest
from datamill.llm.engine import Outcome
from datamill.records import CheckResult, Message, Record

_FORMAT = (
    "Write every calculation as an equation with its result, like `12 * 3 = 36`. Answer in "
    'JSON with the fields "steps" (a list of short steps) and "final_answer" (the number '
    "only, without units)"
)
SOLVE = PromptTemplate(
    name="math-cot-solve",
    version="1",
    system=f"You are a careful math tutor. Solve the problem step by step. {_FORMAT}.",
    user="{{ problem }}",
)
WRITE = PromptTemplate(
    name="math-cot-write",
    version="1",
    system=(
        "You write grade-school math word problems and solve them step by step. "
        f'{_FORMAT}, with the problem itself in the field "problem".'
    ),
    user=(
        "Write a new word problem that {{ persona }} could meet with {{ topic }} "
        "({{ domain }}). Solving it should take {{ steps }} steps of arithmetic. "
        "Then solve it."
    ),
)


class Solution(BaseModel):
    steps: list[str] = Field(min_length=1, description="the reasoning, one step each")
    final_answer: str = Field(description="the number only")


class WrittenProblem(Solution):
    problem: str = Field(description="the word problem, self-contained")


MOST_STEPS = 8


@cache
def solution_schema(written: bool, max_tokens: int) -> type[Solution]:
    """:class:`Solution` (:class:`WrittenProblem` if ``written``) with its list and strings
    capped so that all fit in ``max_tokens``: a small model that loops over steps is cut by
    the schema and still closes its JSON, instead of running out of tokens three times.

    Two characters a token is a safe floor; a step gets room for a sentence and its
    equation, so that a cap rarely cuts one (a cut equation would read as a wrong one).
    """
    chars = 2 * max_tokens
    share = chars * 3 // 5 if written else chars * 4 // 5
    step = Annotated[str, StringConstraints(max_length=max(80, share // MOST_STEPS))]
    fields: dict[str, Any] = {
        "steps": (list[step], Field(min_length=1, max_length=MOST_STEPS)),  # type: ignore[valid-type]
        "final_answer": (str, Field(min_length=1, max_length=40)),
    }
    if written:
        fields["problem"] = (str, Field(min_length=1, max_length=max(160, chars // 4)))
    base = WrittenProblem if written else Solution
    schema: type[Solution] = create_model(base.__name__, __base__=base, **fields)
    return schema


def solution_text(solution: Solution) -> str:
    """The assistant turn of the record: the steps, then the final answer on its own line."""
    steps = "\n".join(step.strip() for step in solution.steps if step.strip())
    return f"{steps}\nFinal answer: {solution.final_answer.strip()}"


def check_programmatic(problem: Problem, solution: Solution, tolerance: float) -> CheckResult:
    """Verified when the final answer is the computed one and no stated computation is wrong."""
    stated = arithmetic.verify(solution_text(solution), solution.final_answer, tolerance)
    answer = arithmetic.parse_answer(solution.final_answer)
    correct = answer is not None and arithmetic.close(answer, problem.answer, tolerance)
    if not correct:
        reason = "the final answer is not the computed answer"
    else:
        reason = f"{len(stated.wrong)} computation(s) do not hold" if stated.wrong else ""
    return CheckResult(
        passed=not reason,
        details={
            **stated.as_details(),
            "reason": reason,
            "expected": problem.answer_text,
            "answer_correct": correct,
        },
    )


def check_written(solution: Solution, tolerance: float) -> CheckResult:
    verification = arithmetic.verify(solution_text(solution), solution.final_answer, tolerance)
    return CheckResult(passed=verification.passed, details=verification.as_details())


def _invalid(solution: Solution, outcome: Outcome) -> LLMError | None:
    raw = outcome.completion.text if outcome.completion is not None else None
    if not solution.final_answer.strip() or not any(s.strip() for s in solution.steps):
        return LLMError("invalid_output", "empty steps or final answer", raw=raw)
    if isinstance(solution, WrittenProblem) and len(solution.problem.split()) < 8:
        return LLMError("invalid_output", "no word problem", raw=raw)
    return None


class MathCotParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["programmatic", "written"] = "programmatic"
    kinds: list[Kind] = Field(
        default_factory=lambda: list(get_args(Kind)), min_length=1, description="programmatic"
    )
    domains: list[str] = Field(default_factory=builtin_packs, description="written: packs")
    steps: str = Field("two to four", description="written: how many steps to ask for")
    tolerance: float = Field(0.01, ge=0, description="allowed difference of final answers")
    keep_unverified: bool = Field(True, description="else an unverified item is a failure")
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(512, ge=16)


class MathCot:
    name = "math_cot"
    Params = MathCotParams

    async def generate(
        self, ctx: Context, params: MathCotParams, n: int
    ) -> AsyncIterator[Record | LLMError]:
        engine = ctx.engine()
        items: Sequence[Problem | Slot]
        if params.mode == "programmatic":
            kinds = params.kinds
            items = [make_problem(kinds[i % len(kinds)], item_seed(ctx.seed, i)) for i in range(n)]
        else:
            items = plan([load_pack(d) for d in params.domains], n, ctx.seed)
        planned = [
            (item, ctx.temperature(i, n, params.temperature, _attributes(item)))
            for i, item in enumerate(items)
        ]
        schema = solution_schema(params.mode == "written", params.max_tokens)
        for part in chunks(planned, 4 * engine.concurrency):
            requests = [self._request(item, t, params) for item, t in part]
            outcomes = [o async for o in engine.map(requests, schema=schema)]
            for (item, _), outcome in zip(part, outcomes, strict=True):
                yield self._record(ctx, item, outcome, params)

    def _request(
        self, item: Problem | Slot, temperature: float, params: MathCotParams
    ) -> ChatRequest:
        if isinstance(item, Problem):
            messages = SOLVE.render(problem=item.question)
        else:
            messages = WRITE.render(**variables(item), steps=params.steps)
        return ChatRequest(
            messages=messages,
            temperature=temperature,
            max_tokens=params.max_tokens,
            seed=item.seed,
        )

    def _record(
        self, ctx: Context, item: Problem | Slot, outcome: Outcome, params: MathCotParams
    ) -> Record | LLMError:
        if outcome.error is not None:
            return outcome.error
        solution: Solution = outcome.parsed
        if (error := _invalid(solution, outcome)) is not None:
            return error
        metadata: dict[str, JsonValue]
        if isinstance(item, Problem):
            question, template = item.question, SOLVE
            check = check_programmatic(item, solution, params.tolerance)
            metadata = {"kind": item.kind, "expected_answer": item.answer_text}
            domain = "math"
        else:
            assert isinstance(solution, WrittenProblem)
            question, template = solution.problem.strip(), WRITE
            check = check_written(solution, params.tolerance)
            metadata = {"persona": item.persona, "topic": item.topic}
            domain = item.domain.name
        verified = bool(check.passed)
        if not verified and not params.keep_unverified:
            raw = outcome.completion.text if outcome.completion is not None else None
            return LLMError("unverified", str(check.details.get("reason")), raw=raw)
        return Record(
            messages=[
                Message(role="user", content=question),
                Message(role="assistant", content=solution_text(solution)),
            ],
            task="math_cot",
            domain=domain,
            language="en",
            metadata={
                "mode": params.mode,
                **metadata,
                "final_answer": solution.final_answer.strip(),
                "verified": verified,
                "computations": check.details.get("computations"),
            },
            provenance=ctx.provenance(template, [outcome]),
            checks={"math_verified": check},
        )


def _attributes(item: Problem | Slot) -> dict[str, str]:
    return {"kind": item.kind} if isinstance(item, Problem) else variables(item)


register(MathCot())
