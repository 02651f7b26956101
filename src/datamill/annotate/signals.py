"""Quality signals on a response: judged faster than its text can be read, or written text
pasted in with little typing. Flagged responses are kept and marked for review."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from datamill.annotate import questions as q

READ_WORDS_PER_SECOND = 10.0  # faster than anyone reads carefully (600 words a minute)
MIN_SECONDS = 2.0  # no item is judged in less
TYPE_CHARS_PER_SECOND = 15.0  # about 180 words a minute, a fast typist


class Timing(BaseModel):
    """What the browser measured on an item."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    seconds: float = Field(ge=0, le=7 * 86400)  # time on the item
    typing_seconds: float = Field(default=0.0, ge=0, le=7 * 86400)
    paste_events: int = Field(default=0, ge=0, le=100_000)


def quality_flags(
    questions: list[q.Question], stored: dict[str, object], view: q.View, timing: Timing
) -> list[str]:
    """Signals for review: judged faster than the text can be read; written text pasted in."""
    flags = []
    words = sum(len(t.split()) for t in [*view.messages, *view.candidates])
    if timing.seconds < max(MIN_SECONDS, words / READ_WORDS_PER_SECOND):
        flags.append("too_fast")
    written = q.written_chars(questions, stored)
    typable = timing.typing_seconds * TYPE_CHARS_PER_SECOND
    if written and timing.paste_events and typable < written / 2:
        flags.append("pasted")
    return flags
