"""Where a slow request spent its time: phases marked as a request goes, logged when the
whole took more than ``DATAMILL_SLOW_MS`` milliseconds (unset: nothing is timed or logged).

    phases = Phases.start(arrived)   # None when the log is off
    ...; mark(phases, "lock"); ...
    report(phases, "submit")
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("datamill.annotate.slow")


def _threshold() -> float | None:
    value = os.environ.get("DATAMILL_SLOW_MS", "")
    try:
        return float(value) if value else None
    except ValueError:
        raise ValueError(
            f"DATAMILL_SLOW_MS must be a number of milliseconds, not {value!r}"
        ) from None


THRESHOLD_MS = _threshold()


class Phases:
    """Named marks of ``time.perf_counter()``, the first one the request's arrival."""

    def __init__(self, arrived: float) -> None:
        self.marks: list[tuple[str, float]] = [("arrived", arrived)]

    @classmethod
    def start(cls, arrived: float | None) -> Phases | None:
        if THRESHOLD_MS is None or arrived is None:
            return None
        return cls(arrived)

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def total_ms(self) -> float:
        return (self.marks[-1][1] - self.marks[0][1]) * 1000

    def describe(self) -> str:
        steps = zip(self.marks, self.marks[1:], strict=False)
        return " ".join(f"{b[0]}={(b[1] - a[1]) * 1000:.1f}" for a, b in steps)


def mark(phases: Phases | None, name: str) -> None:
    if phases is not None:
        phases.mark(name)


def report(phases: Phases | None, what: str) -> None:
    """Log the phases (ms each) if the request took longer than the threshold."""
    if phases is None or THRESHOLD_MS is None:
        return
    phases.mark("done")
    total = phases.total_ms()
    if total > THRESHOLD_MS:
        at = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        log.warning(
            "%s pid %d slow %s %.1f ms: %s", at, os.getpid(), what, total, phases.describe()
        )
