"""How long the disk takes to make an 8 kB append durable, measured while a load runs.

Every durable commit of PostgreSQL waits for one such ``fdatasync`` of its write-ahead log
(SQLite in WAL mode with ``synchronous = NORMAL`` does not), so when this probe's slowest
syncs are as slow as the slowest requests, the tail is the disk's and not the server's.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field

STALL_MS = 50.0


@dataclass
class Probe:
    """A thread that appends 8 kB and fdatasyncs every ``interval`` seconds until stopped."""

    directory: str = field(default_factory=tempfile.gettempdir)
    interval: float = 0.05
    cpu: float = 0.0  # seconds the probe's thread spent on a core (to keep out of others' CPU)
    ms: list[float] = field(default_factory=list)
    stalls: list[tuple[str, float]] = field(default_factory=list)  # (clock time, ms)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Probe:
        self._thread = threading.Thread(target=self._run, name="fsync-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        block = b"\0" * 8192
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix="fsync-probe-") as f:
            fd = f.fileno()
            while not self._stop.wait(self.interval):
                if os.lseek(fd, 0, os.SEEK_CUR) >= 16 << 20:
                    os.lseek(fd, 0, os.SEEK_SET)  # reuse 16 MB, like a WAL segment
                os.write(fd, block)
                t0 = time.perf_counter()
                os.fdatasync(fd)
                ms = (time.perf_counter() - t0) * 1000
                self.ms.append(ms)
                if ms > STALL_MS:
                    self.stalls.append((time.strftime("%H:%M:%S"), ms))
        self.cpu = time.thread_time()

    def summary(self) -> str:
        if not self.ms:
            return "no fdatasync measured"
        ms = sorted(self.ms)

        def q(p: float) -> float:
            return ms[min(len(ms) - 1, int(p * len(ms)))]

        worst = ", ".join(
            f"{at} {v:.0f} ms" for at, v in sorted(self.stalls, key=lambda s: -s[1])[:5]
        )
        return (
            f"{len(ms)} fdatasyncs of 8 kB in {self.directory}: p50 {q(0.5):.1f} ms "
            f"p99 {q(0.99):.1f} ms max {ms[-1]:.1f} ms; {len(self.stalls)} over {STALL_MS:.0f} ms"
            + (f" (worst: {worst})" if worst else "")
        )
