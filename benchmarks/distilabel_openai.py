"""The distilabel half of benchmarks/llm_throughput.py; runs in benchmarks/.venv-distilabel.

distilabel's OpenAILLM as its users call it from async code: ``load()``, then ``agenerate``
per input, here with at most C calls in flight (an ``asyncio.Semaphore``) so that it gets
the same steady concurrency as datamill. (Its batch method, ``generate``, gathers a whole
batch and waits for the slowest call before the next batch starts, which would be unfair to
it.) Client settings are distilabel's defaults.

It serves the parent over pipes, so distilabel is imported once: each line on stdin is
``{"concurrency": C, "requests": N, "tag": T}``, answered by one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import warnings
from typing import Any


def load_llm(url: str) -> Any:
    warnings.filterwarnings("ignore")  # distilabel's import-time pydantic warnings
    try:
        from distilabel.models.llms import OpenAILLM  # distilabel >= 1.5
    except ImportError:
        from distilabel.llms import OpenAILLM  # older releases
    llm = OpenAILLM(model="stub", base_url=url, api_key="not-needed")  # type: ignore[arg-type]
    llm.load()
    return llm


async def run(llm: Any, concurrency: int, texts: list[str]) -> dict[str, float]:
    slots = asyncio.Semaphore(concurrency)

    async def one(text: str) -> str | None:
        async with slots:
            output = await llm.agenerate(
                input=[{"role": "user", "content": text}],
                max_new_tokens=64,
                temperature=0.7,
                top_p=1.0,
            )
        return output["generations"][0]

    start = time.perf_counter()
    generations = await asyncio.gather(*(one(t) for t in texts))
    elapsed = time.perf_counter() - start
    failed = sum(1 for g in generations if not g)
    if failed:
        raise SystemExit(f"distilabel: {failed} of {len(texts)} calls gave no text")
    return {"requests": len(texts), "seconds": elapsed, "requests_per_second": len(texts) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    llm = load_llm(args.url)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        texts = [
            f"[{job['tag']}] Write one sentence about topic number {i}."
            for i in range(job["requests"])
        ]
        # a fresh loop per job, as asyncio.run gives; the client's pool is made per loop
        llm.load()
        print(json.dumps(asyncio.run(run(llm, job["concurrency"], texts))), flush=True)


if __name__ == "__main__":
    main()
