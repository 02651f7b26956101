"""Exports to the formats training libraries read.

Each format is a :class:`~datamill.export.rows.Format` (one module each); :mod:`.run`
writes any of them to JSONL or Parquet, one file per split (:mod:`.split`), with a dataset
card (:mod:`.card`).
"""

from __future__ import annotations

from datamill.export.rows import Format

FORMATS = ("sft", "preference", "kto", "reward", "openai", "sharegpt")


def make_format(name: str, pairs: str = "all", judge: str | None = None) -> Format:
    """The format called ``name``; ``pairs`` and ``judge`` tune the preference formats."""
    if name == "sft":
        from datamill.export.sft import SFT

        return SFT
    if name == "preference":
        from datamill.export.preference import preference

        return preference(pairs, judge)
    if name == "kto":
        from datamill.export.unpaired import unpaired

        return unpaired(judge)
    if name == "reward":
        from datamill.export.reward import reward

        return reward(judge or "judge")
    if name == "openai":
        from datamill.export.openai_ft import OPENAI

        return OPENAI
    if name == "sharegpt":
        from datamill.export.sharegpt import SHAREGPT

        return SHAREGPT
    raise ValueError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "Format", "make_format"]
