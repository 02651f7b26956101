"""Unpaired preference data for KTO: ``prompt``/``completion``/``label`` (True: desirable).

Labels come, first found wins, from the order of a record's candidates (the best tier is
desirable, the worst undesirable; see :mod:`datamill.export.ranking`), then for the
record's own reply from the resolve decision (``accept``/``reject``), then from its checks
(desirable if every check passed). Records that failed a check are therefore kept by
default: they are the undesirable examples.
"""

from __future__ import annotations

import functools

import pyarrow as pa

from datamill.checks import passed
from datamill.export.ranking import AWAITING, candidate_order
from datamill.export.rows import MULTI_TURN, Format, Row, Skip, Style, prompt_in, reply_in
from datamill.export.rows import text_or_messages as _type
from datamill.records import Record

NO_LABEL = Skip("no_label")
GOOD = {"accept", "accepted", "good", "yes", "true", "desirable"}
BAD = {"reject", "rejected", "bad", "no", "false", "undesirable"}


def reply_label(record: Record) -> tuple[bool, str] | None:
    """Whether the record's own reply is desirable, and who said so."""
    resolved = record.decisions.get("resolve")
    if resolved is not None and resolved.outcome.lower() in GOOD | BAD:
        return resolved.outcome.lower() in GOOD, "consensus"
    if record.checks:
        return passed(record), "checks"
    return None


def rows(record: Record, style: Style, judge: str | None = None) -> list[Row] | Skip:
    prompt = prompt_in(record, style)
    order = candidate_order(record, judge)
    labelled: list[tuple[str, bool, str]] = []
    if not isinstance(order, Skip) and len(order.tiers) > 1:
        for tier, label in ((order.tiers[0], True), (order.tiers[-1], False)):
            labelled += [(record.candidates[i].content, label, order.source) for i in tier]
    elif record.response is not None and (found := reply_label(record)) is not None:
        labelled.append((record.response, *found))
    if not labelled:
        return AWAITING if order == AWAITING else NO_LABEL
    if prompt is None:
        return MULTI_TURN
    return [
        {
            "id": record.id,
            "prompt": prompt,
            "completion": reply_in(text, style),
            "label": label,
            "label_source": source,
        }
        for text, label, source in labelled
    ]


def schema(style: Style) -> pa.Schema:
    t = _type(style)
    return pa.schema(
        {
            "id": pa.string(),
            "prompt": t,
            "completion": t,
            "label": pa.bool_(),
            "label_source": pa.string(),
        }
    )


def unpaired(judge: str | None = None) -> Format:
    return Format("kto", functools.partial(rows, judge=judge), schema, only_passed=False)
