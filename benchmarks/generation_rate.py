"""Generation on the embedded model: records a minute, parse and verification failures.

Run it with ``.venv/bin/python benchmarks/generation_rate.py SAMPLES [--n 10]`` (or ``make
bench-generate``).

Each family's shipped recipe (``recipes/<family>.yaml``, ``loop.yaml`` aside) runs through
the real runner into a throwaway dataset with an empty request cache, so every call is
paid for. A line per family gives the records kept a minute of wall time, the items lost
to parse failures, rejections and call errors, and the kept records whose verification
failed (they are kept on purpose: see ``datamill.generate.tally``), with the load average
at its end: the embedded model shares the machine's cores, so a busy machine halves the
rate. One record of each family is written to ``SAMPLES/<family>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamill.errors import DatamillError
from datamill.generate.run import run_generation
from datamill.recipe import load_recipe
from datamill.store import Dataset

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


@dataclass
class Rate:
    family: str
    items: int
    seconds: float
    summary: dict[str, Any]
    failures: dict[str, int]

    @property
    def per_minute(self) -> float:
        return 60 * self.summary["kept"] / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        s = self.summary
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        return (
            f"{self.family:<20} {s['kept']:>3}/{self.items:<3} kept {self.per_minute:6.2f}/min "
            f"in {self.seconds:6.0f}s | parse failures {s['parse_failures']:>2}, rejected "
            f"{s['rejected']:>2}, call errors {s['call_errors']:>2} | verification failed "
            f"{s['verification_failed']:>2} | load {load}"
            + (f" | {self.failures}" if self.failures else "")
        )


def run_family(family: str, n: int, samples: Path) -> Rate:
    recipe = load_recipe(RECIPES / f"{family}.yaml")
    with tempfile.TemporaryDirectory(prefix=f"bench-{family}-") as tmp:
        dataset = Dataset.create(Path(tmp) / "ds")
        started = time.perf_counter()
        version = asyncio.run(run_generation(recipe, dataset, n=n))
        seconds = time.perf_counter() - started
        first = next(iter(dataset.records(version.version)), None)
        if first is not None:
            (samples / f"{family}.json").write_text(first.model_dump_json(indent=2) + "\n")
    stats = version.stats
    return Rate(family, n, seconds, stats["summary"], stats["failures"])  # type: ignore[arg-type]


def families() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.yaml") if p.stem != "loop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", type=Path, help="directory for one record per family")
    parser.add_argument("--n", type=int, default=10, help="items per family")
    parser.add_argument(
        "--n-of",
        action="append",
        default=[],
        metavar="FAMILY=N",
        help="items for one family (slow ones: e.g. coding=5); repeatable",
    )
    parser.add_argument("--families", nargs="+", choices=families(), default=families())
    args = parser.parse_args()
    counts = {f: args.n for f in args.families}
    for item in args.n_of:
        family, _, n = item.partition("=")
        if family not in counts or not n.isdigit():
            parser.error(f"--n-of {item!r}: expected FAMILY=N with FAMILY one of {args.families}")
        counts[family] = int(n)
    args.samples.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # recipes name their documents relative to the repository
    rates = []
    for family, n in counts.items():
        try:
            rate = run_family(family, n, args.samples)
        except DatamillError as e:  # a family that cannot run is a line too, not the end
            print(f"{family:<20} did not run: {e}", flush=True)
            continue
        print(rate.line(), flush=True)
        rates.append(rate)
    kept = sum(r.summary["kept"] for r in rates)
    items = sum(r.items for r in rates)
    seconds = sum(r.seconds for r in rates) or 1.0
    parse = sum(r.summary["parse_failures"] for r in rates)
    unverified = sum(r.summary["verification_failed"] for r in rates)
    empty = [r.family for r in rates if not r.summary["kept"]]
    print(
        f"all: {kept}/{items} kept, {60 * kept / seconds:.2f} records/min over {seconds:.0f}s, "
        f"{parse} parse failures, {unverified} failed verification; "
        f"families with no record: {', '.join(empty) or 'none'}; samples in {args.samples}"
    )


if __name__ == "__main__":
    main()
