"""Preference pairs (``prompt``/``chosen``/``rejected``) for DPO, ORPO and reward models.

Pairs are made from the order of a record's candidates (see :mod:`datamill.export.ranking`):
every better/worse pair by default, or only the best against the rest or against the
worst. Each row says where its preference came from (``preference_source``) and which
record it belongs to (``id``), so a pair can be traced to the humans or judge behind it.
"""

from __future__ import annotations

import functools

import pyarrow as pa

from datamill.export.ranking import Order, candidate_order
from datamill.export.rows import MULTI_TURN, Format, Row, Skip, Style, prompt_in, reply_in
from datamill.export.rows import text_or_messages as _type
from datamill.records import Record

PAIRS = ("all", "best", "extremes")


def rows(
    record: Record, style: Style, pairs: str = "all", judge: str | None = None
) -> list[Row] | Skip:
    order = candidate_order(record, judge)
    if isinstance(order, Skip):
        return order
    prompt = prompt_in(record, style)
    if prompt is None:
        return MULTI_TURN
    return [_row(record, prompt, order, a, b, style) for a, b in order.pairs(pairs)]


def _row(record: Record, prompt: object, order: Order, a: int, b: int, style: Style) -> Row:
    return {
        "id": record.id,
        "prompt": prompt,
        "chosen": reply_in(record.candidates[a].content, style),
        "rejected": reply_in(record.candidates[b].content, style),
        "preference_source": order.source,
    }


def schema(style: Style) -> pa.Schema:
    t = _type(style)
    return pa.schema(
        {
            "id": pa.string(),
            "prompt": t,
            "chosen": t,
            "rejected": t,
            "preference_source": pa.string(),
        }
    )


def preference(pairs: str = "all", judge: str | None = None) -> Format:
    if pairs not in PAIRS:
        raise ValueError(f"pairs must be one of {', '.join(PAIRS)}, not {pairs!r}")
    return Format("preference", functools.partial(rows, pairs=pairs, judge=judge), schema)
