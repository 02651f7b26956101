"""Near-duplicate detection: datamill's near_dup check against datasketch and rensa.

Run it with ``.venv/bin/python benchmarks/dedup.py [--docs 100000]`` (or ``make bench-dedup``).

The corpus: documents of 100-300 words drawn from a seeded Zipfian vocabulary, and for 6%
of them a variant made by random word substitutions, insertions and deletions until its
word 5-gram Jaccard similarity to the original reaches one of LEVELS. The truth is the
exact Jaccard of each injected pair; a pair is a duplicate when it is at least 0.8. Every
reported pair is scored against it (precision: share of reported pairs that are true;
recall: share of true pairs reported).

Each contender reads the corpus, a line a document, in its own process, and is timed
from its first line to its last verdict, end to end: reading, tokenising, shingling,
hashing, LSH and verification of candidates. All use 5-grams, 128 permutations, 16 bands
x 8 rows and keep only texts that pass in their index:
- datamill: NearDup.scan over (id, text) pairs as they are read, streaming, with its
  default workers (one process per core);
- datasketch: batches of 4096, MinHash.bulk and MinHashLSH, candidates verified on
  estimated Jaccard;
- rensa: batches of 4096, R-MinHash from the same 5-gram strings and its
  RMinHashDeduplicator (LSH plus its own similarity check), one thread.
datasketch and rensa are not datamill dependencies: they are installed into their own
virtualenv, benchmarks/.venv-dedup, on first use. CPU time counts the worker processes.

Memory is the contender's anonymous memory (RssAnon: heap and the like), sampled every 5
ms from outside, at its peak, less what it held once imports were done: what the
deduplication itself holds. Pages of files the process maps (datamill keeps the older
part of its LSH index in files) are page cache the kernel can drop and read again; the
resident high-water mark with them is printed too. datamill's worker processes are
reported apart (the largest anonymous memory of one; workers forked from the contender
count the pages they share with it). datamill also runs on a quarter of the corpus to
show how its memory grows with the corpus, in bytes per added document.

Each contender runs ``--repeat`` times (3), the runs interleaved round by round; the
fastest run's figures count and every run's rate is printed. The machine may be shared:
the load average is printed before, after each contender and at the end, and the ratios
(docs/s, and docs per CPU-second, which load changes less) matter more than the rates.
Every figure is a line of its own ("what: value"); the last line sums the run up.

Last, the decontam check's recall on GSM8K's test questions lightly paraphrased (a lead-in
and one word swapped, dropped or replaced per 20, 12 or 8 words), with 13-grams and
8-grams, and the share of the corpus's documents it flags.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.resources import files
from itertools import islice
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-dedup"
SPEC = ("datasketch>=2,<3", "rensa>=0.5,<0.6")
LEVELS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95)
THRESHOLD, NGRAM, PERM, BANDS, ROWS, BATCH = 0.8, 5, 128, 16, 8, 4096


def grams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + NGRAM]) for i in range(max(1, len(words) - NGRAM + 1))}


def jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    return len(a & b) / len(a | b)


def make_corpus(n: int, path: Path, seed: int = 0) -> list[tuple[int, int, float]]:
    """Write ``n`` documents, one a line; return the injected pairs with their Jaccard."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(30_000)]
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.07
    pool = rng.choice(len(vocab), size=n * 200 * 2, p=weights / weights.sum()).tolist()
    draw = iter(pool)
    variants = int(n * 0.06)
    docs = [[vocab[next(draw)] for _ in range(rng.integers(100, 301))] for _ in range(n - variants)]
    truth = []
    for k, base in enumerate(rng.choice(len(docs), variants, replace=False).tolist()):
        target, original = LEVELS[k % len(LEVELS)], grams(docs[base])
        words, before, sim = list(docs[base]), list(docs[base]), 1.0
        while sim > target:
            before, last = list(words), sim
            at, op = int(rng.integers(len(words))), rng.random()
            if op < 0.6:
                words[at] = vocab[next(draw)]
            elif op < 0.8 or len(words) < 50:
                words.insert(at, vocab[next(draw)])
            else:
                del words[at]
            sim = jaccard(original, grams(words))
        if last - target < target - sim:  # the state nearer the target
            words, sim = before, last
        truth.append((base, len(docs), sim))
        docs.append(words)
    order = rng.permutation(len(docs))
    where = np.argsort(order)
    path.write_text("".join(" ".join(docs[i]) + "\n" for i in order.tolist()))
    return [(int(where[a]), int(where[b]), s) for a, b, s in truth]


class Datamill:
    def __init__(self) -> None:
        from datamill.checks.near_dup import NearDup

        self.check = NearDup(
            threshold=THRESHOLD, ngram=NGRAM, num_perm=PERM, bands=BANDS, rows=ROWS
        )

    def dedup(self, texts: Iterator[str]) -> list[tuple[int, int]]:
        async def scan() -> list[tuple[int, int]]:
            found, number = [], 0
            async for results in self.check.scan((str(i), t) for i, t in enumerate(texts)):
                for result in results:
                    if result.passed is False:
                        found.append((number, int(result.details["duplicate_of"])))  # type: ignore[arg-type]
                    number += 1
            await self.check.aclose()
            return found

        return asyncio.run(scan())


def batches(texts: Iterator[str]) -> Iterator[tuple[int, list[str]]]:
    """Consecutive lists of BATCH texts, each with the number of its first."""
    start = 0
    while batch := list(islice(texts, BATCH)):
        yield start, batch
        start += len(batch)


def shingle_strings(text: str) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + NGRAM]) for i in range(max(1, len(words) - NGRAM + 1))]


class Datasketch:
    def __init__(self) -> None:
        from datasketch import MinHashLSH

        self.lsh = MinHashLSH(threshold=THRESHOLD, num_perm=PERM, params=(BANDS, ROWS))
        self.kept: dict[int, object] = {}

    def dedup(self, texts: Iterator[str]) -> list[tuple[int, int]]:
        return [pair for start, batch in batches(texts) for pair in self.process(start, batch)]

    def process(self, start: int, texts: list[str]) -> list[tuple[int, int]]:
        from datasketch import LeanMinHash, MinHash

        sets = [[s.encode() for s in shingle_strings(t)] for t in texts]
        found = []
        for i, m in enumerate(MinHash.bulk(sets, num_perm=PERM)):
            lean = LeanMinHash(m)
            scored = [(lean.jaccard(self.kept[c]), c) for c in self.lsh.query(lean)]
            best = max(scored, default=(0.0, -1))
            if best[0] >= THRESHOLD:
                found.append((start + i, best[1]))
            else:
                self.lsh.insert(start + i, lean)
                self.kept[start + i] = lean
        return found


class Rensa:
    def __init__(self) -> None:
        from rensa import RMinHashDeduplicator

        self.index = RMinHashDeduplicator(
            threshold=THRESHOLD, num_perm=PERM, use_lsh=True, num_bands=BANDS
        )

    def dedup(self, texts: Iterator[str]) -> list[tuple[int, int]]:
        return [pair for start, batch in batches(texts) for pair in self.process(start, batch)]

    def process(self, start: int, texts: list[str]) -> list[tuple[int, int]]:
        from rensa import RMinHash

        found = []
        sketches = RMinHash.from_token_sets([shingle_strings(t) for t in texts], PERM, 42)
        for i, m in enumerate(sketches):
            duplicates = self.index.get_duplicates(m)
            if duplicates:
                found.append((start + i, int(min(duplicates, key=int))))
            else:
                self.index.add(str(start + i), m)
        return found


CONTENDERS = {"datamill": Datamill, "datasketch": Datasketch, "rensa": Rensa}


def status(field: str, pid: int | str = "self") -> float:
    """A /proc/PID/status figure in MB (VmRSS: resident now, VmHWM: high-water mark)."""
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith(field + ":"):
                return int(row.split()[1]) / 1024
    return 0.0


def children_cpu() -> float:
    """CPU seconds of the child processes that have ended (datamill's workers, once shut)."""
    times = os.times()
    return times.children_user + times.children_system


def contend(name: str, corpus: Path, out: Path, docs: int) -> None:
    """One contender over the first ``docs`` lines of the corpus, in this process.

    Memory is read from /proc (VmHWM), not getrusage: ru_maxrss survives exec, so it
    would start at the benchmark's own size when the contender was spawned."""
    runner = CONTENDERS[name]()
    base, anon_base = status("VmRSS"), status("RssAnon")
    with corpus.open() as f:
        texts = (line.rstrip("\n") for line in islice(f, docs))
        began, used, waited = time.perf_counter(), time.process_time(), children_cpu()
        found = runner.dedup(texts)
        seconds = time.perf_counter() - began
        cpu = time.process_time() - used + children_cpu() - waited
    result = {"seconds": seconds, "cpu": cpu, "docs": docs, "found": found}
    result |= {"anon_base": anon_base, "resident": status("VmHWM") - base}
    out.write_text(json.dumps(result))


def bench_python(install: bool) -> Path | None:
    """The python of the venv holding datasketch and rensa, made on first use."""
    python = VENV / "bin" / "python"
    if not python.exists() and install:
        print(f"# installing {' '.join(SPEC)} into {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *SPEC], check=True)
    return python if python.exists() else None


def children(pid: int) -> list[int]:
    """The processes started by this one (datamill's workers), while alive."""
    pids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:  # gone meanwhile
        pass
    return pids


def anon(pid: int) -> float:
    """The anonymous memory a process holds now, in MB (0 once it is gone)."""
    try:
        return status("RssAnon", pid)
    except OSError:
        return 0.0


def run(python: Path | str, name: str, corpus: Path, docs: int) -> dict:
    """One contender in a process of its own; its anonymous memory is sampled from here
    every 5 ms (a sampling thread in it would change how datamill starts its workers)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [str(python), __file__, "--contend", name, str(corpus), out.name, str(docs)]
        process = subprocess.Popen(command)
        peak = worker_peak = 0.0
        while process.poll() is None:
            peak = max(peak, anon(process.pid))
            worker_peak = max([worker_peak, *map(anon, children(process.pid))])
            time.sleep(0.005)
        if process.returncode:
            raise subprocess.CalledProcessError(process.returncode, command)
        result = json.loads(Path(out.name).read_text())
    result |= {"memory": peak - result["anon_base"], "workers": worker_peak}
    return result | {"load": os.getloadavg()[0]}


def score(found: list[list[int]], truth: list[tuple[int, int, float]], docs: int) -> dict:
    inside = [(a, b, s) for a, b, s in truth if a < docs and b < docs]
    true = {frozenset((a, b)) for a, b, s in inside if s >= THRESHOLD}
    said = {frozenset(p) for p in found}
    hits = len(said & true)
    by_level = {}
    for level in LEVELS:
        pairs = [frozenset((a, b)) for a, b, s in inside if abs(s - level) < 0.025]
        by_level[level] = sum(p in said for p in pairs) / max(len(pairs), 1)
    return {
        "precision": hits / max(len(said), 1),
        "recall": hits / max(len(true), 1),
        "true": len(true),
        "said": len(said),
        "by_level": by_level,
    }


def figures(name: str, r: dict) -> list[str]:
    """One line per figure of a contender's run."""
    s = r["score"]
    lines = [
        f"{name} docs: {r['docs']:,}",
        f"{name} seconds: {r['seconds']:.2f}",
        f"{name} docs/s: {r['docs'] / r['seconds']:,.0f}",
        f"{name} docs per CPU-second: {r['docs'] / r['cpu']:,.0f}",
        f"{name} precision: {s['precision']:.3f}",
        f"{name} recall: {s['recall']:.3f}",
        f"{name} memory: +{r['memory']:.0f} MB",
        f"{name} resident memory with mapped files: +{r['resident']:.0f} MB",
    ]
    if r["workers"]:
        lines.append(f"{name} memory of each worker, at most: {r['workers']:.0f} MB")
    for level, share in s["by_level"].items():
        lines.append(f"{name} share of pairs reported at Jaccard {level}: {share:.3f}")
    lines.append(f"{name} load average after its run: {r['load']:.1f}")
    return lines


EDIT_EVERY = (20, 12, 8)  # one edit per this many words: light to heavier paraphrase


def paraphrase(text: str, every: int, rng: random.Random) -> str:
    """A light paraphrase: a lead-in, and one edit (a word swapped with its neighbour,
    dropped, or replaced by a filler) per ``every`` words, at random places."""
    words = text.split()
    for _ in range(max(1, len(words) // every)):
        at, op = rng.randrange(len(words)), rng.random()
        if op < 0.4 and at + 1 < len(words):
            words[at], words[at + 1] = words[at + 1], words[at]
        elif op < 0.7 and len(words) > 5:
            del words[at]
        else:
            words[at] = rng.choice(["really", "then", "also", "exactly", "just", "each"])
    return rng.choice(["", "Question: ", "Please solve: ", "Here is a problem. "]) + " ".join(words)


def decontamination(controls: list[str]) -> list[str]:
    """Recall of the decontam check (13-grams, and 8-grams) on paraphrased GSM8K test
    questions, and how many unrelated texts it flags."""
    from datamill.checks.decontam import BUILTIN, Decontam
    from datamill.records import Message, Provenance, Record

    path = files("datamill") / "data" / "benchmarks" / BUILTIN["gsm8k"][0]
    questions = [json.loads(row)["question"] for row in path.read_text().splitlines()]
    source = Provenance(source="imported")

    def flagged(check: Decontam, texts: list[str]) -> float:
        records = [
            Record(messages=[Message(role="user", content=t)], provenance=source) for t in texts
        ]
        return sum(check.check(r).passed is False for r in records) / len(records)

    lines = []
    for n in (13, 8):
        check, rng = Decontam(n=n, benchmarks=["gsm8k"]), random.Random(n)
        for every in EDIT_EVERY:
            found = flagged(check, [paraphrase(q, every, rng) for q in questions])
            lines.append(
                f"decontam {n}-grams recall on {len(questions):,} GSM8K questions paraphrased"
                f" with 1 edit per {every} words: {found:.3f}"
            )
        share = flagged(check, controls)
        lines.append(f"decontam {n}-grams share of unrelated texts flagged: {share:.3f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--no-install", action="store_true", help="skip contenders not installed")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts")
    parser.add_argument("--contend", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contend:
        name, corpus, out, docs = args.contend
        contend(name, Path(corpus), Path(out), int(docs))
        return
    load = os.getloadavg()[0]
    print(f"load average before: {load:.1f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        began = time.perf_counter()
        truth = make_corpus(args.docs, corpus)
        true = sum(s >= THRESHOLD for _, _, s in truth)
        print(f"corpus docs: {args.docs:,}", flush=True)
        print(f"corpus injected pairs: {len(truth):,}")
        print(f"corpus pairs at Jaccard >= {THRESHOLD}: {true:,}")
        print(f"corpus seconds to make: {time.perf_counter() - began:.0f}", flush=True)
        other = bench_python(not args.no_install)
        pythons = {"datamill": sys.executable} | dict.fromkeys(("rensa", "datasketch"), other)
        for name, python in pythons.items():
            if python is None:
                print(f"{name} skipped: {VENV} is missing")
        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeat):  # rounds interleave the contenders
            for name, python in pythons.items():
                if python is not None:
                    runs.setdefault(name, []).append(run(python, name, corpus, args.docs))
        results = {name: min(rs, key=lambda r: r["seconds"]) for name, rs in runs.items()}
        quarter = run(sys.executable, "datamill", corpus, args.docs // 4)
        with corpus.open() as f:
            controls = [next(f).rstrip("\n") for _ in range(min(2000, args.docs))]
        for name, r in results.items():
            r["score"] = score(r["found"], truth, r["docs"])
            for row in figures(name, r):
                print(row, flush=True)
            rates = [r["docs"] / r["seconds"] for r in runs[name]]
            print(f"{name} docs/s of each run, in order: {', '.join(f'{x:,.0f}' for x in rates)}")
    full = results["datamill"]["memory"]
    growth = (full - quarter["memory"]) / (args.docs - quarter["docs"]) * 2**20
    print(f"datamill memory at {quarter['docs']:,} docs: +{quarter['memory']:.0f} MB")
    print(f"datamill memory at {args.docs:,} docs: +{full:.0f} MB")
    print(f"datamill memory per added doc: {growth:,.0f} bytes")
    recall = decontamination(controls)
    for row in recall:
        print(row)
    rate = {n: r["docs"] / r["seconds"] for n, r in results.items()}
    per_cpu = {n: r["docs"] / r["cpu"] for n, r in results.items()}
    d = results["datamill"]["score"]
    summary = (
        f"datamill {rate['datamill']:,.0f} docs/s, P {d['precision']:.3f} R {d['recall']:.3f},"
        f" +{quarter['memory']:.0f} MB at {quarter['docs']:,} docs and +{full:.0f} MB at"
        f" {args.docs:,}"
    )
    for name in ("datasketch", "rensa"):
        if name in rate:
            ratio, cpu_ratio = rate["datamill"] / rate[name], per_cpu["datamill"] / per_cpu[name]
            print(f"datamill/{name} docs/s: {ratio:.1f}x")
            print(f"datamill/{name} docs per CPU-second: {cpu_ratio:.1f}x")
            summary += f"; {ratio:.1f}x {name} ({rate[name]:,.0f} docs/s)"
    after = os.getloadavg()[0]
    print(f"load average after: {after:.1f}")
    print(f"summary: {summary}; load average {load:.1f} before, {after:.1f} after")


if __name__ == "__main__":
    main()
