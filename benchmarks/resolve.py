"""Resolving: majority vote against Dawid–Skene on simulated annotators, and the cost.

Run it with ``.venv/bin/python benchmarks/resolve.py [--items 20000]`` (or ``make
bench-resolve``).

Each item has a true label (safe/unsafe) and a rating question; three of five annotators
answer it, drawn at random. The annotators are right with probability 0.9, 0.85, 0.8, 0.4
and 0.35 (the last two are worse than a coin), so the careless often outvote the careful.
The same dataset version is resolved with ``--method majority`` and with Dawid–Skene; each
line gives records per second through the whole stage (both passes, reading and writing
Parquet) and the share of items whose consensus label is the true one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from datamill.quality.questions import Question
from datamill.records import Annotation, Message, Provenance, Record
from datamill.resolve import Settings, resolve_dataset
from datamill.store import Dataset

ACCURACY = (0.9, 0.85, 0.8, 0.4, 0.35)
LABELS = ("safe", "unsafe")
QUESTIONS = {
    "safe": Question(name="safe", kind="label", labels=list(LABELS)),
    "quality": Question(name="quality", kind="rating", scale=(1, 5)),
}


def build(path: Path, items: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, items)
    ds = Dataset.create(path)
    with ds.writer("annotate") as w:
        for i in range(items):
            answers = []
            for k in rng.choice(len(ACCURACY), 3, replace=False):
                label = truth[i] if rng.random() < ACCURACY[k] else 1 - truth[i]
                who = f"annotator{k}"
                answers.append(Annotation(annotator=who, question="safe", value=LABELS[label]))
                rating = int(rng.integers(3, 6))
                answers.append(Annotation(annotator=who, question="quality", value=rating))
            messages = [
                Message(role="user", content=f"question {i}"),
                Message(role="assistant", content=f"answer {i}"),
            ]
            w.write(
                Record(
                    messages=messages,
                    provenance=Provenance(source="synthetic"),
                    annotations=answers,
                )
            )
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        truth = build(Path(tmp) / "ds", args.items, args.seed)
        ds = Dataset.open(Path(tmp) / "ds")
        import crowdkit.aggregation  # noqa: F401  (imports are not part of the timing)
        import sklearn.metrics  # noqa: F401

        for method in ("majority", "dawid_skene"):
            settings = Settings(method=method, min_agreement=0.0)  # type: ignore[arg-type]
            start = time.perf_counter()
            summary = resolve_dataset(ds, 1, QUESTIONS, settings)
            seconds = time.perf_counter() - start
            got = [
                r.decisions["resolve"].details["questions"]["safe"]["value"]  # type: ignore[index, call-overload]
                for r in ds.records(summary.version.version)
            ]
            right = np.mean([g == LABELS[t] for g, t in zip(got, truth, strict=True)])
            print(
                f"{method:<12} {args.items / seconds:8.0f} records/s  "
                f"accuracy {right:.3f}  ({seconds:.1f} s for {args.items} items)"
            )


if __name__ == "__main__":
    main()
