"""LLM throughput: datamill's engine against its ideal and against distilabel.

Run it with ``.venv/bin/python benchmarks/llm_throughput.py`` (or ``make bench-llm``).

Part A, HTTP: the loopback stub server (its own process, ``--fast`` mode) answers every
request after a fixed latency L. For each concurrency C, N = 20·C distinct prompts go
through everything datamill does per request: the Engine with a fresh on-disk request
cache, one Record per outcome (prompt, reply, provenance with usage) written into a new
Dataset version. The ideal rate is C/L. Beside it, in the same run, two bare clients show
what the server and the machine allow: datamill's HTTP client with C workers and nothing
else, and aiohttp at its best (one session, a pool of C keep-alive connections, bytes
bodies) — the figure that chose the client. The same workload then goes through
distilabel's OpenAILLM, run from its own virtualenv (benchmarks/.venv-distilabel, made on
first use; distilabel is not a datamill dependency) by ``benchmarks/distilabel_openai.py``;
it only calls the model (no cache, no records, no dataset), so the comparison leans its way.

Each figure is the best of ``--repeat`` runs (their range is printed too), the figures
interleaved run by run. The machine is shared and its load moves by the second: the engine
over the bare client, measured side by side, is the figure to read when the load is high;
the load average is printed on every line.

Part B, embedded: tokens/s through datamill's EmbeddedBackend (via the Engine) against
llama-cpp-python's ``Llama.create_chat_completion`` called directly, same prompts, same
parameters, same threads, the two alternating call by call over ``--repeat`` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
# this process's CPU seconds per request in the engine's runs, by figure
CPU_PER_REQUEST: dict[str, list[float]] = {"engine": [], "engine-alone": []}
DISTILABEL_VENV = HERE / ".venv-distilabel"
# distilabel 1.5 imports requests without declaring it
DISTILABEL_SPEC = ("distilabel>=1.5,<1.6", "openai>=1.0", "requests")


# -- the stub server -----------------------------------------------------------------------


class Server:
    """The stub server in its own process(es), on a loopback port."""

    def __init__(self, latency: float, workers: int, fast: bool) -> None:
        command = [sys.executable, "-m", "datamill.llm.stub_server", "--port", "0"]
        command += ["--latency", str(latency), "--workers", str(workers)]
        command += ["--fast"] if fast else []
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise SystemExit(f"the stub server did not start (said {line!r})")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def prompts(n: int, tag: str) -> list[str]:
    return [f"[{tag}] Write one sentence about topic number {i}." for i in range(n)]


# -- the bare client: what the server alone allows -----------------------------------------


async def _pool(concurrency: int, texts: list[str], one: Callable[[str], Awaitable[None]]) -> float:
    """Requests/s of ``one`` over ``texts``, C workers each taking the next text in turn."""
    queue = iter(texts)

    async def worker() -> None:
        for text in queue:
            await one(text)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(texts) / (time.perf_counter() - start)


def _body(text: str) -> bytes:
    return json.dumps({"model": "stub", "messages": [{"role": "user", "content": text}]}).encode()


async def _bare_aiohttp(url: str, concurrency: int, texts: list[str]) -> float:
    """aiohttp at its best: one session, a pool of C keep-alive connections, bytes in and out."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, keepalive_timeout=60)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(text: str) -> None:
            async with session.post(f"{url}/chat/completions", data=_body(text)) as response:
                json.loads(await response.read())
                assert response.status == 200

        return await _pool(concurrency, texts, one)


async def _bare(url: str, concurrency: int, texts: list[str]) -> float:
    """datamill's HTTP client alone: what the server, the loop and the machine allow."""
    from datamill.llm.http import Client

    client = Client(url, {"Content-Type": "application/json"})

    async def one(text: str) -> None:
        response = await client.post("/chat/completions", _body(text))
        json.loads(response.body)
        assert response.status == 200

    try:
        return await _pool(concurrency, texts, one)
    finally:
        await client.aclose()


# -- datamill --------------------------------------------------------------------------------


async def _datamill(
    url: str, concurrency: int, texts: list[str], workdir: Path, records: bool = True
) -> float:
    """The engine with a fresh request cache; with ``records``, each outcome becomes a
    Record written into a new Dataset version, as a generation task does."""
    from datamill.llm.base import ChatRequest
    from datamill.llm.cache import RequestCache
    from datamill.llm.engine import Engine, usage_of
    from datamill.llm.openai_compat import OpenAICompatBackend
    from datamill.records import Message, Provenance, Record
    from datamill.store import Dataset

    dataset = Dataset.create(workdir / "dataset", name="bench")
    cache = RequestCache(workdir / "llm-cache.sqlite")
    backend = OpenAICompatBackend(url, "stub")
    params = {"bench": "llm_throughput", "concurrency": concurrency}
    requests = (
        ChatRequest(messages=[Message(role="user", content=t)], max_tokens=64, seed=0)
        for t in texts
    )
    failed = 0
    start, cpu = time.perf_counter(), time.process_time()
    async with Engine(backend, concurrency=concurrency, cache=cache) as engine:
        with dataset.writer("generate", params) as writer:
            async for outcome in engine.map(requests):
                completion = outcome.completion
                if completion is None:
                    failed += 1
                    continue
                usage = usage_of(outcome)
                if not records:
                    continue
                writer.write(
                    Record(
                        messages=[
                            *outcome.request.messages,
                            Message(role="assistant", content=completion.text),
                        ],
                        task="bench",
                        provenance=Provenance(
                            source="synthetic",
                            model=completion.model,
                            backend=completion.backend,
                            params=outcome.request.sampling(),
                            seed=outcome.request.seed,
                            usage=usage,
                        ),
                    )
                )
    elapsed = time.perf_counter() - start
    CPU_PER_REQUEST["engine" if records else "engine-alone"].append(
        (time.process_time() - cpu) / len(texts)
    )
    cache.close()
    written = dataset.count() if records else len(texts) - failed
    if failed or written != len(texts):
        raise SystemExit(f"datamill: {failed} failed, {written} of {len(texts)} records written")
    return len(texts) / elapsed


# -- distilabel, in its own virtualenv -------------------------------------------------------


def distilabel_python(install: bool) -> tuple[Path | None, str]:
    """The distilabel venv's python, made on first use; or None and the reason."""
    python = DISTILABEL_VENV / "bin" / "python"
    check = [str(python), "-c", "import distilabel, openai; print(distilabel.__version__)"]
    if python.exists():
        done = subprocess.run(check, capture_output=True, text=True)
        if done.returncode == 0:
            return python, done.stdout.strip()
    if not install:
        return None, "not installed (run without --no-install to make benchmarks/.venv-distilabel)"
    print(f"# installing {' '.join(DISTILABEL_SPEC)} into {DISTILABEL_VENV} ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(DISTILABEL_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *DISTILABEL_SPEC],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"install failed: {' / '.join(tail)}"
    done = subprocess.run(check, capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"installed but does not import: {done.stderr.strip().splitlines()[-1:]}"
    return python, done.stdout.strip()


class Distilabel:
    """distilabel_openai.py in the distilabel venv, imported once, fed jobs over a pipe."""

    def __init__(self, python: Path, url: str) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(HERE / "distilabel_openai.py"), "--url", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._read()  # ready

    def _read(self) -> dict[str, float]:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = self.proc.stderr.read().strip().splitlines()[-1:]
            raise RuntimeError(tail[0] if tail else f"exited with {self.proc.returncode}")
        return dict(json.loads(line))

    def run(self, concurrency: int, n: int, tag: str) -> float:
        assert self.proc.stdin is not None
        job = {"concurrency": concurrency, "requests": n, "tag": tag}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return float(self._read()["requests_per_second"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- part A ----------------------------------------------------------------------------------

FIGURES = {
    "bare": "bare client (datamill.llm.http)",
    "aiohttp": "bare aiohttp",
    "engine-alone": "engine alone (cache, accounting)",
    "engine": "engine (cache, records, dataset)",
    "distilabel": "distilabel OpenAILLM",
}


@dataclass
class Row:
    """One concurrency's figures: requests/s of each run, by figure, and the load beside them."""

    concurrency: int
    ideal: float
    runs: dict[str, list[float]]
    cpu: dict[str, float]  # the engine's CPU seconds per request, the least of its runs
    load: str

    def best(self, figure: str) -> float | None:
        runs = self.runs.get(figure)
        return max(runs) / self.ideal if runs else None

    def spread(self, figure: str) -> str:
        low, high = (f(self.runs[figure]) / self.ideal for f in (min, max))
        return f"{high:.2f} of C/L (runs {low:.2f}-{high:.2f})"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def part_a(args: argparse.Namespace) -> list[Row]:
    python, why = (None, "skipped (--no-distilabel)")
    if not args.no_distilabel:
        python, why = distilabel_python(install=not args.no_install)
    if python is None:
        print(f"# distilabel: {why}; reporting datamill's figures only", flush=True)
    server = Server(args.latency, args.server_workers, fast=not args.aiohttp_server)
    kind = "aiohttp stub" if args.aiohttp_server else "fast stub"
    print(
        f"# {kind} server on port {server.port}, {args.server_workers} worker(s), "
        f"latency L = {args.latency}s; N = {args.per_slot}·C requests; "
        f"best of {args.repeat}, figures interleaved; {os.cpu_count()} cores, {load()}",
        flush=True,
    )
    distilabel = None
    rows = []
    try:
        if python is not None:
            try:
                distilabel = Distilabel(python, server.url)
                print(f"# distilabel {why}: OpenAILLM.agenerate, C in flight", flush=True)
            except RuntimeError as e:
                print(f"# distilabel would not start ({e}); datamill's figures only", flush=True)
        asyncio.run(_bare(server.url, 16, prompts(64, "warmup")))
        with tempfile.TemporaryDirectory(prefix="datamill-bench-") as tmp:
            asyncio.run(_datamill(server.url, 16, prompts(64, "warmup"), Path(tmp)))
        for c in args.concurrency:
            n = args.per_slot * c
            runs: dict[str, list[float]] = {name: [] for name in FIGURES}
            for cpu in CPU_PER_REQUEST.values():
                cpu.clear()
            for r in range(args.repeat):
                order = list(FIGURES) if r % 2 == 0 else list(FIGURES)[::-1]
                for name in order:
                    texts = prompts(n, f"{name}{c}.{r}")
                    if name == "bare":
                        runs[name].append(asyncio.run(_bare(server.url, c, texts)))
                    elif name == "aiohttp":
                        runs[name].append(asyncio.run(_bare_aiohttp(server.url, c, texts)))
                    elif name in ("engine", "engine-alone"):
                        records = name == "engine"
                        with tempfile.TemporaryDirectory(prefix="datamill-bench-") as tmp:
                            rate = _datamill(server.url, c, texts, Path(tmp), records)
                            runs[name].append(asyncio.run(rate))
                    elif distilabel is not None:
                        try:
                            runs[name].append(distilabel.run(c, n, f"distilabel{c}.{r}"))
                        except RuntimeError as e:
                            print(f"# distilabel failed at C={c}: {e}", flush=True)
                            distilabel = None
            cpu = {name: min(values) for name, values in CPU_PER_REQUEST.items()}
            row = Row(c, c / args.latency, runs, cpu, load())
            rows.append(row)
            for line in format_row(row):
                print(line, flush=True)
    finally:
        if distilabel is not None:
            distilabel.close()
        server.close()
    return rows


def format_row(row: Row) -> list[str]:
    """One line per figure."""
    head = f"C={row.concurrency:<3d} (C/L {row.ideal:4.0f}/s)"
    lines = []
    for name, label in FIGURES.items():
        if not row.runs[name]:
            lines.append(f"{head} {label:34s} n/a")
            continue
        line = f"{head} {label:34s} {row.spread(name)}"
        engine, figure = row.best("engine"), row.best(name)
        assert engine is not None and figure is not None
        if name in row.cpu:
            line += f" = {figure / (row.best('bare') or figure):.2f} of bare"
            line += f", {row.cpu[name] * 1e6:.0f} µs CPU/request"
        elif name == "distilabel":
            line += f"; engine/distilabel {engine / figure:.1f}x"
        lines.append(f"{line} | {row.load}")
    return lines


def summary_a(rows: list[Row]) -> list[str]:
    if not rows:
        return []

    def figures(name: str) -> str:
        values = [row.best(name) for row in rows]
        return "/".join("n/a" if v is None else f"{v:.2f}" for v in values)

    at = "/".join(str(row.concurrency) for row in rows)
    parts = [
        f"engine {figures('engine')} of C/L at C={at}",
        f"engine alone {figures('engine-alone')}",
        f"bare client {figures('bare')}",
        f"bare aiohttp {figures('aiohttp')}",
    ]
    ratios = [
        f"{e / b:.2f}"
        for row in rows
        if (e := row.best("engine")) is not None and (b := row.best("bare")) is not None
    ]
    parts.append(f"engine/bare {'/'.join(ratios)}")
    if any(row.runs["distilabel"] for row in rows):
        times = [
            f"{e / d:.1f}x"
            if (e := row.best("engine")) and (d := row.best("distilabel"))
            else "n/a"
            for row in rows
        ]
        parts.append(f"distilabel {figures('distilabel')} (engine {'/'.join(times)})")
    return parts


# -- part B ----------------------------------------------------------------------------------

EMBEDDED_PROMPTS = [
    "Name three uses of copper.",
    "What is a prime number? Answer briefly.",
    "Give one tip for writing clear emails.",
    "Why is the sky blue? One paragraph.",
    "Explain what a list is in Python.",
    "Suggest a name for a small bakery.",
    "What does a thermometer measure?",
    "Describe a cat in two sentences.",
]


def part_b(args: argparse.Namespace) -> tuple[float, float] | None:
    try:
        from datamill.llm.base import ChatRequest
        from datamill.llm.embedded import EmbeddedBackend
        from datamill.llm.engine import Engine
        from datamill.records import Message
    except ImportError as e:
        print(f"# embedded: {e}", flush=True)
        return None
    try:
        backend = EmbeddedBackend()  # its default threads: one per core
        from llama_cpp import Llama
    except Exception as e:  # the model package or llama-cpp-python is missing
        print(f"# embedded: skipped ({e})", flush=True)
        return None
    threads = backend.n_threads
    params = {"temperature": 0.7, "top_p": 0.95, "max_tokens": args.max_tokens}
    requests = [
        ChatRequest(messages=[Message(role="user", content=p)], seed=i, **params)
        for i, p in enumerate(EMBEDDED_PROMPTS)
    ]
    # One model each for the direct calls with and without reset(): sharing one, a call
    # would find the same prompt already evaluated by the other side's call just before,
    # which no real use of llama-cpp-python gets.
    direct, fresh = (
        Llama(model_path=str(backend.path), n_ctx=backend.n_ctx, n_threads=threads, verbose=False)
        for _ in range(2)
    )

    engine = Engine(backend, concurrency=1)
    # tokens, seconds; "reset" is llama-cpp-python direct with llama.reset() before each call,
    # as datamill does so that an answer never depends on the call before it
    totals = {"datamill": [0, 0.0], "direct": [0, 0.0], "reset": [0, 0.0]}

    async def datamill(request: ChatRequest) -> int:
        outcome = await engine.complete(request)
        assert outcome.completion is not None, outcome.error
        return outcome.completion.completion_tokens

    def direct_call(request: ChatRequest, reset: bool = False) -> int:
        llama = fresh if reset else direct
        if reset:
            llama.reset()
        out = llama.create_chat_completion(
            messages=[m.model_dump(exclude_none=True) for m in request.messages],
            seed=request.seed,
            stop=[],
            **params,
        )
        return int(out["usage"]["completion_tokens"])

    async def run() -> None:
        await datamill(requests[0])  # load the models and warm them up
        direct_call(requests[0])
        direct_call(requests[0], reset=True)
        # Call by call, alternating which goes first: the machine's load changes by the
        # second, and both sides must see the same.
        for r in range(args.repeat):
            for i, request in enumerate(requests):
                turn = (r * len(requests) + i) % len(totals)
                sides = list(totals)[turn:] + list(totals)[:turn]
                for side in sides:
                    start = time.perf_counter()
                    if side == "datamill":
                        tokens = await datamill(request)
                    else:
                        tokens = direct_call(request, reset=side == "reset")
                    totals[side][0] += tokens
                    totals[side][1] += time.perf_counter() - start

    asyncio.run(run())
    mill, dire, reset = (tokens / seconds for tokens, seconds in totals.values())
    print(
        f"embedded ({backend.model}, {threads} threads on {os.cpu_count()} cores, "
        f"{len(requests)} prompts × {args.repeat}, "
        f"max_tokens {args.max_tokens}): datamill Engine {mill:.1f} tok/s | "
        f"llama-cpp-python create_chat_completion {dire:.1f} tok/s | ratio {mill / dire:.2f} | "
        f"the same with reset() per call, as datamill does: {reset:.1f} tok/s, "
        f"ratio {mill / reset:.2f}",
        flush=True,
    )
    return mill, dire


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--per-slot", type=int, default=20, help="N = this × C")
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; best is kept")
    parser.add_argument(
        "--aiohttp-server", action="store_true", help="the full stub server, not --fast"
    )
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--no-distilabel", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="never create the venv")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-embedded", action="store_true")
    args = parser.parse_args()

    rows = [] if args.no_http else part_a(args)
    embedded = None if args.no_embedded else part_b(args)

    summary = summary_a(rows)
    if embedded:
        summary.append(f"embedded {embedded[0] / embedded[1]:.2f} of llama-cpp-python direct")
    print("summary: " + "; ".join(summary), flush=True)


if __name__ == "__main__":
    main()
