"""The ledger: what each source of data cost and contributed, computed on the user's data.

Sources are of three kinds:

- **synthetic**, one row per model and recipe: items are its records; cost is the sum of
  ``provenance.usage.cost`` (or tokens × the rates file's price for the model); throughput
  is records per hour of model time (``usage.seconds``).
- **human-written** (imported or human records), one row per source and recipe.
- **annotation**, one row per project and annotator group: items are the records the
  group answered on; cost is annotation seconds × the group's hourly rate; throughput is
  items per annotator hour; acceptance is how often its answers equal the consensus.

A synthetic record that people then annotated counts in both: its generation cost on the
synthetic side, its annotation cost on the human side. Each side's cost per item is over
its own items: the synthetic side over its records, the human side over the records that
have annotations, each counted once however many groups answered on it.

For records, acceptance is the share the router accepted (``decisions["route"]``), or,
without routing, the share that passed every check; quality is the mean ``judge`` score;
the flag rate is the share with a failed check; the hallucination rate is the share failing
a grounding, consistency or verification check among those that had one; diversity is
distinct-2 and self-BLEU on a sample of the source's responses.

A cost nobody can know (no usage, no price, no rate, no seconds) is unknown — None, shown
as such — never zero; a partly known cost keeps the count of items without one. An item
whose cost is only partly known (one of its annotators' time is missing) adds what is known
to the total but is left out of the cost per item, which divides the cost of the fully
priced items by their number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from datamill.llm.prices import Price
from datamill.quality.diversity import Profiler
from datamill.records import Annotation, Record
from datamill.yamlfile import load_model

HALLUCINATION_CHECKS = ("grounding", "self_consistency", "verified", "math_verified", "tests_pass")
QUALITY_CHECK = "judge"


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hourly: float | None = Field(None, ge=0)
    annotators: list[str] = Field(default_factory=list)


class Rates(BaseModel):
    """``rates.yaml``: hourly rates of annotator groups and prices of models."""

    model_config = ConfigDict(extra="forbid")

    currency: str = "USD"
    groups: dict[str, Group] = Field(default_factory=dict)
    default_hourly: float | None = Field(None, ge=0)  # for annotators in no group
    prices: dict[str, Price] = Field(default_factory=dict)  # per 1M tokens, by model

    @classmethod
    def load(cls, path: str | Path) -> Rates:
        return load_model(path, cls)

    def group_of(self, annotator: str) -> str:
        for name, group in self.groups.items():
            if annotator in group.annotators:
                return name
        return "ungrouped"

    def hourly(self, group: str) -> float | None:
        known = self.groups.get(group)
        return known.hourly if known is not None else self.default_hourly


class Row(BaseModel):
    kind: str  # synthetic, human-written, annotation
    source: str
    items: int = 0
    cost: float | None = None  # every known cost, partly priced items included
    unpriced: int = 0  # items whose cost is not (fully) known
    priced_cost: float = 0.0  # the cost of the fully priced items
    seconds: float = 0.0  # model or annotator time
    throughput: float | None = None  # items per hour
    acceptance: float | None = None
    quality: float | None = None
    flag_rate: float | None = None
    hallucination_rate: float | None = None
    distinct_2: float | None = None
    self_bleu: float | None = None
    answers: int = 0  # annotation rows: answers given

    @property
    def cost_per_item(self) -> float | None:
        priced = self.items - self.unpriced
        return self.priced_cost / priced if priced > 0 else None


class Ledger(BaseModel):
    currency: str = "USD"
    rows: list[Row] = Field(default_factory=list)
    comparison: dict[str, dict[str, float | None]] = Field(default_factory=dict)


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _add_cost(current: float | None, extra: float) -> float:
    return extra if current is None else current + extra


@dataclass
class _ItemCost:
    """What one item cost a source: None until some of it is known; ``known`` is False
    when part of it (an answer without time or rate) is not."""

    cost: float | None = None
    seconds: float = 0.0
    known: bool = True


@dataclass
class _Side:
    """Synthetic or human, for the comparison: each item once, whatever rows it is in."""

    items: int = 0
    priced: int = 0
    cost: float = 0.0  # of the priced items
    seconds: float = 0.0

    def add(self, spent: _ItemCost) -> None:
        self.items += 1
        self.seconds += spent.seconds
        if spent.known and spent.cost is not None:
            self.priced += 1
            self.cost += spent.cost

    def totals(self) -> dict[str, float | None]:
        return {
            "items": float(self.items),
            "cost_per_item": self.cost / self.priced if self.priced else None,
            "items_per_hour": self.items / (self.seconds / 3600) if self.seconds > 0 else None,
        }


@dataclass
class _Tally:
    """Running sums for one source, while the records stream past."""

    kind: str
    row: Row
    profiler: Profiler | None = None
    counts: Counter[str] = field(default_factory=Counter)
    quality_sum: float = 0.0
    timed: set[tuple[str, str]] = field(default_factory=set)  # annotation responses seen

    def producer(self, record: Record, rates: Rates) -> _ItemCost:
        """Count one record of this source; what it cost."""
        row, c = self.row, self.counts
        row.items += 1
        usage, model = record.provenance.usage, record.provenance.model
        price = rates.prices.get(model or "")
        cost: float | None = None
        if usage is not None and usage.cost is not None:
            cost = usage.cost
        elif usage is not None and price is not None:
            tokens = usage.prompt_tokens * price.prompt + usage.completion_tokens * price.completion
            cost = tokens / 1e6
        if cost is None:
            row.unpriced += 1
        else:
            row.cost = _add_cost(row.cost, cost)
            row.priced_cost += cost
        if usage is not None:
            row.seconds += usage.seconds
        route = record.decisions.get("route")
        if route is not None:
            c["routed"] += 1
            c["accepted"] += route.outcome == "accept"
        verdicts = [r.passed for r in record.checks.values() if r.passed is not None]
        if verdicts:
            c["checked"] += 1
            c["flagged"] += not all(verdicts)
        grounded = [record.checks[n].passed for n in HALLUCINATION_CHECKS if n in record.checks]
        grounded = [p for p in grounded if p is not None]
        if grounded:
            c["verifiable"] += 1
            c["hallucinated"] += not all(grounded)
        judge = record.checks.get(QUALITY_CHECK)
        if judge is not None and judge.score is not None:
            c["judged"] += 1
            self.quality_sum += judge.score
        if self.profiler is not None:
            self.profiler.add(record)
        return _ItemCost(cost, usage.seconds if usage is not None else 0.0, cost is not None)

    def annotation(
        self, record: Record, answers: list[Annotation], hourly: float | None
    ) -> _ItemCost:
        """Count one record's answers by this group; what they cost."""
        row, c = self.row, self.counts
        row.items += 1
        spent = _ItemCost()
        resolved = record.decisions.get("resolve")
        questions = resolved.details.get("questions") if resolved is not None else None
        consensus = questions if isinstance(questions, dict) else {}
        timed: set[tuple[str, JsonValue]] = set()
        for a in answers:
            row.answers += 1
            agreed = consensus.get(a.question)
            if isinstance(agreed, dict) and "value" in agreed:
                c["compared"] += 1
                c["agreed"] += a.value == agreed["value"]
            key = (a.annotator, a.metadata.get("response_id") or a.question)
            if key in timed:
                continue  # one response answers several questions in one stretch of time
            timed.add(key)
            spent.seconds += a.seconds or 0.0
            if a.seconds is None or hourly is None:
                spent.known = False
                continue
            spent.cost = _add_cost(spent.cost, a.seconds / 3600 * hourly)
        row.seconds += spent.seconds
        if spent.cost is not None:
            row.cost = _add_cost(row.cost, spent.cost)
        if spent.known and spent.cost is not None:
            row.priced_cost += spent.cost
        else:
            row.unpriced += 1
        return spent

    def finish(self) -> Row:
        row, c = self.row, self.counts
        if row.seconds > 0:
            row.throughput = row.items / (row.seconds / 3600)
        if self.kind == "annotation":
            row.acceptance = _rate(c["agreed"], c["compared"])
            return row
        if c["routed"]:
            row.acceptance = _rate(c["accepted"], c["routed"])
        elif c["checked"]:
            row.acceptance = 1 - c["flagged"] / c["checked"]
        row.flag_rate = _rate(c["flagged"], c["checked"])
        row.hallucination_rate = _rate(c["hallucinated"], c["verifiable"])
        row.quality = self.quality_sum / c["judged"] if c["judged"] else None
        if self.profiler is not None:
            profile = self.profiler.profile()
            row.distinct_2, row.self_bleu = profile.distinct_2, profile.self_bleu
        return row


def _producer_key(record: Record) -> tuple[str, str]:
    p = record.provenance
    if p.source == "synthetic":
        return "synthetic", f"{p.model or 'unknown model'} / {p.recipe or 'no recipe'}"
    return "human-written", f"{p.source} / {p.recipe or 'no recipe'}"


def build_ledger(
    records: Iterable[Record], rates: Rates | None = None, sample: int = 200
) -> Ledger:
    """One streaming pass over ``records``; memory grows with the number of sources only."""
    rates = rates or Rates()
    tallies: dict[tuple[str, str], _Tally] = {}

    def tally(kind: str, source: str) -> _Tally:
        if (kind, source) not in tallies:
            profiler = None if kind == "annotation" else Profiler(sample=sample)
            tallies[kind, source] = _Tally(kind, Row(kind=kind, source=source), profiler)
        return tallies[kind, source]

    sides = {"synthetic": _Side(), "human": _Side()}
    for record in records:
        kind, source = _producer_key(record)
        spent = tally(kind, source).producer(record, rates)
        if kind == "synthetic":
            sides["synthetic"].add(spent)
        by_group: dict[tuple[str, str], list[Annotation]] = {}
        for a in record.annotations:
            group = rates.group_of(a.annotator)
            by_group.setdefault((a.project or "no project", group), []).append(a)
        labour = _ItemCost()
        for (project, group), answers in by_group.items():
            spent = tally("annotation", f"{project} / {group}").annotation(
                record, answers, rates.hourly(group)
            )
            if spent.cost is not None:
                labour.cost = _add_cost(labour.cost, spent.cost)
            labour.seconds += spent.seconds
            labour.known = labour.known and spent.known
        if by_group:
            sides["human"].add(labour)
    rows = [t.finish() for t in tallies.values()]
    order = {"synthetic": 0, "human-written": 1, "annotation": 2}
    rows.sort(key=lambda r: (order[r.kind], r.source))
    comparison = compare_sources(rows, {k: side.totals() for k, side in sides.items()})
    return Ledger(currency=rates.currency, rows=rows, comparison=comparison)


def _pooled(rows: list[Row], attr: str) -> float | None:
    """The items-weighted mean of a rate over rows that have it."""
    pairs = [(getattr(r, attr), r.items) for r in rows if getattr(r, attr) is not None]
    weight = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / weight if weight else None


def compare_sources(
    rows: list[Row], totals: dict[str, dict[str, float | None]]
) -> dict[str, dict[str, float | None]]:
    """Synthetic against human, side by side: what each item cost and how fast it came
    (``totals``: each side over its own items; human: from annotation time), and what came
    out (human: from human-written records)."""
    producers = {
        "synthetic": [r for r in rows if r.kind == "synthetic"],
        "human": [r for r in rows if r.kind == "human-written"],
    }
    labour = [r for r in rows if r.kind == "annotation"]
    out: dict[str, dict[str, float | None]] = {}
    for side in ("synthetic", "human"):
        measures = dict(totals[side])
        for attr in (
            "acceptance",
            "quality",
            "flag_rate",
            "hallucination_rate",
            "distinct_2",
            "self_bleu",
        ):
            measures[attr] = _pooled(producers[side], attr)
        if side == "human":
            measures["agreement_with_consensus"] = _pooled(labour, "acceptance")
        out[side] = measures
    return out
