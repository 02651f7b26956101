"""The process test_llm_resume kills: prompts through the engine into a dataset version.

    python llm_resume_driver.py URL CACHE DATASET PROMPTS CONCURRENCY CACHE_BATCH

Each outcome becomes one record (the prompt and the reply) of a new version of DATASET.
The driver prints ``0`` once it is about to start, then the number of outcomes after each
one. Before committing it waits for a line on stdin, so a run the test means to kill never
commits: the kill lands while calls are in flight or, at the latest, just before commit.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from datamill.llm import ChatRequest
from datamill.llm.cache import RequestCache
from datamill.llm.engine import Engine, Outcome, usage_of
from datamill.llm.openai_compat import OpenAICompatBackend
from datamill.llm.prices import Price, PriceTable
from datamill.records import Message, Provenance, Record
from datamill.store import Dataset

MODEL = "stub-model"
PRICES = PriceTable(models={MODEL: Price(prompt=1.5, completion=4.0)})


def requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            messages=[
                Message(role="system", content="Answer in one line."),
                Message(role="user", content=f"Question {i}: what is {i} times {i % 7}?"),
            ],
            temperature=0.8,
            max_tokens=64,
            seed=i,
        )
        for i in range(n)
    ]


def to_record(index: int, outcome: Outcome) -> Record:
    if outcome.completion is None:
        raise SystemExit(f"prompt {index} failed: {outcome.error}")
    # Wall time is the one thing a rerun cannot reproduce; everything else must match.
    usage = usage_of(outcome).model_copy(update={"seconds": 0.0})
    return Record(
        messages=[
            *outcome.request.messages,
            Message(role="assistant", content=outcome.completion.text),
        ],
        metadata={"index": index, "finish_reason": outcome.completion.finish_reason},
        provenance=Provenance(
            source="synthetic",
            model=outcome.completion.model,
            backend=outcome.completion.backend,
            params=outcome.request.sampling(),
            seed=outcome.request.seed,
            usage=usage,
        ),
    )


async def main(
    url: str, cache: Path, dataset: Path, prompts: int, concurrency: int, cache_batch: int
) -> None:
    engine = Engine(
        OpenAICompatBackend(url, MODEL),
        concurrency=concurrency,
        cache=RequestCache(cache, batch=cache_batch),
        prices=PRICES,
    )
    async with engine:
        with Dataset.create(dataset).writer("answer", params={"prompts": prompts}) as writer:
            print(0, flush=True)
            done = 0
            async for outcome in engine.map(requests(prompts)):
                writer.write(to_record(done, outcome))
                done += 1
                print(done, flush=True)
            sys.stdin.readline()


if __name__ == "__main__":
    url, cache, dataset, prompts, concurrency, batch = sys.argv[1:]
    asyncio.run(main(url, Path(cache), Path(dataset), int(prompts), int(concurrency), int(batch)))
