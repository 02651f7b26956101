"""Hashing a stream of texts for near-duplicate detection, in chunks, in worker processes
and in the parent, in order.

The parent sends each chunk to a worker as soon as it is read and, while the next sketch
it needs is not back, hashes a later chunk itself rather than wait, so one worker per
other core keeps every core busy without oversubscribing them.

A parent that runs no other Python thread forks its workers at once: they start in
milliseconds, with the hashing code already imported. Otherwise (a plain fork is not safe
in a threaded parent) workers fork from a server process that imports the hashing code
once; starting it takes a second or more on a busy machine, so it starts in the
background and the parent hashes in process until the workers are up. Like any
multiprocessing user, a script that runs this needs a ``__main__`` guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import multiprocessing
import os
import shutil
import tempfile
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import TypeVar

import numpy as np

from datamill.checks.lsh import write_all
from datamill.checks.shingles import Shingling, Sketched, sketch_texts
from datamill.errors import DatamillError

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
CHUNK_TEXTS = 512  # texts per unit of work sent to a worker
CHUNK_CHARS = 1 << 20  # and at most this many characters, unless one text is longer
AHEAD = 3  # chunks sent to each worker ahead of the one the parent waits for
LIMIT = 16  # chunks read and not yet yielded, at most

T = TypeVar("T")


async def chunked(
    items: Iterable[T] | AsyncIterable[T], text: Callable[[T], str]
) -> AsyncIterator[tuple[list[T], list[str]]]:
    """Consecutive runs of items small enough for one worker call, with their texts: at
    most CHUNK_TEXTS texts and CHUNK_CHARS characters, unless one text is longer."""
    if not isinstance(items, AsyncIterable):  # read a chunk at once, not item by item
        source = iter(items)
        while group := list(islice(source, CHUNK_TEXTS)):
            texts = list(map(text, group))
            for start, end in _by_size(texts):
                yield group[start:end], texts[start:end]
        return
    group, texts, chars = [], [], 0
    async for item in items:
        value = text(item)
        if texts and chars + len(value) > CHUNK_CHARS:
            yield group, texts
            group, texts, chars = [], [], 0
        group.append(item)
        texts.append(value)
        chars += len(value)
        if len(texts) == CHUNK_TEXTS:
            yield group, texts
            group, texts, chars = [], [], 0
    if texts:
        yield group, texts


def _by_size(texts: list[str]) -> list[tuple[int, int]]:
    """Start and end of consecutive runs of at most CHUNK_CHARS characters, unless one
    text is longer."""
    ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)))
    spans, start, used = [], 0, 0
    while start < len(texts):
        end = max(int(np.searchsorted(ends, used + CHUNK_CHARS, side="right")), start + 1)
        spans.append((start, end))
        start, used = end, int(ends[end - 1])
    return spans


_FILES: dict[str, int] = {}  # in a worker: its file in each folder, open for appending
_NONE = np.zeros(0, np.uint32)


def sketch_to_file(
    texts: list[str], how: Shingling, pairs_per_bucket: int, folder: str
) -> Sketched:
    """:func:`sketch_texts` in a worker, the hashes appended to the worker's own file in
    ``folder`` rather than sent back (the parent reads those of the few texts it
    verifies), and only the top 32 bits of band keys (all the index uses) sent."""
    sketched = sketch_texts(texts, how, pairs_per_bucket)
    path = os.path.join(folder, str(os.getpid()))
    fd = _FILES.get(path)
    if fd is None:
        fd = _FILES[path] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    offset = os.lseek(fd, 0, os.SEEK_END)  # only this process writes to it
    write_all(lambda view: os.write(fd, view), sketched.hashes)
    order = sketched.order  # positions of keys: fewer bytes to send when they fit
    small = order.astype(np.uint16) if len(order) <= 1 << 16 else order
    keys = (sketched.keys >> np.uint64(32)).astype(np.uint32)  # the bits the index uses
    return sketched._replace(keys=keys, hashes=_NONE, order=small, spilled=(path, offset))


def keep_freed_memory(keep: bool = True) -> None:
    """Whether glibc keeps the memory a chunk frees for the next one (a worker's
    initializer; the judging process keeps it while it streams).

    By default glibc hands large blocks back to the kernel and faults them in again for
    the next chunk, which cost a third of the time in the kernel (a page fault costs a
    microsecond or more in a virtual machine). Not keeping sets glibc's default
    thresholds again. Elsewhere than on glibc this does nothing.
    """
    libc = _glibc()
    if libc is None:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 64 << 20 if keep else 128 << 10)
    libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20 if keep else 128 << 10)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextlib.contextmanager
def freed_memory_kept() -> Iterator[None]:
    """:func:`keep_freed_memory` in this process while any such block runs."""
    global _keeping
    _keeping += 1
    if _keeping == 1:
        keep_freed_memory()
    try:
        yield
    finally:
        _keeping -= 1
        if not _keeping:
            keep_freed_memory(False)


_keeping = 0  # blocks of freed_memory_kept running


class SketchPool:
    """:func:`sketch_texts` over a stream of chunks of texts, in ``workers`` processes: this
    one and ``workers - 1`` worker processes once they are up (this one alone before, or
    with fewer than 2 workers or chunks)."""

    def __init__(self, how: Shingling, workers: int, pairs_per_bucket: int) -> None:
        self.how, self.workers, self.pairs_per_bucket = how, workers, pairs_per_bucket
        self.pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._folder = ""  # where workers write hashes: made with the workers, gone after
        self.fork = True  # whether workers may fork from this process when it is safe

    async def stream(self, chunks: AsyncIterable[list[str]]) -> AsyncIterator[Sketched]:
        """Sketches of each chunk of texts, in order, as the chunks come.

        Chunks go to the worker processes as soon as they are read, up to AHEAD per
        worker, so that they hash the next ones while the caller uses a sketch. While the
        next sketch due is not back yet, this process hashes the latest chunk read and not
        sent, rather than wait: it works as one more hashing process, whenever it has
        nothing else to do. A stream of one chunk starts no workers.
        """
        with contextlib.ExitStack() as kept:
            try:
                async for sketched in self._stream(chunks, kept):
                    yield sketched
            except BrokenProcessPool as error:
                raise DatamillError(
                    "a worker process hashing texts for near-duplicates ended abruptly"
                    " (killed, or out of memory)"
                ) from error

    async def _stream(
        self, chunks: AsyncIterable[list[str]], kept: contextlib.ExitStack
    ) -> AsyncIterator[Sketched]:
        """:meth:`stream`; from a stream's second chunk on, this process keeps freed memory
        (``kept`` lets it go), so that a stream of one chunk changes nothing."""
        args = (self.how, self.pairs_per_bucket)
        pending: deque[list[str] | Future[Sketched] | Sketched] = deque()
        source, more, seen = aiter(chunks), True, 0
        while True:
            unsent = [i for i, item in enumerate(pending) if isinstance(item, list)]
            busy = sum(isinstance(item, Future) and not item.done() for item in pending)
            while more and len(unsent) + busy < AHEAD * self.workers and len(pending) < LIMIT:
                texts = await anext(source, None)
                more = texts is not None
                if texts is not None:
                    unsent.append(len(pending))
                    pending.append(texts)
                    seen += 1
                    if seen == 2:
                        kept.enter_context(freed_memory_kept())
            if not pending:
                return
            if seen > 1 and self.workers >= 2 and self._ready():
                while unsent and busy < AHEAD * (self.workers - 1):  # the earliest first
                    i = unsent.pop(0)
                    work = (sketch_to_file, pending[i], *args, self._folder)
                    pending[i] = self.pool.submit(*work)
                    busy += 1
            head = pending[0]
            if isinstance(head, Future) and not head.done() and unsent:
                last = unsent[-1]  # hashed here while a worker has the head
                pending[last] = sketch_texts(pending[last], *args)  # type: ignore[arg-type]
                continue
            pending.popleft()
            if isinstance(head, Future):
                yield await asyncio.wrap_future(head)
            else:
                yield sketch_texts(head, *args) if isinstance(head, list) else head

    def start(self) -> None:
        """Start the workers now, if there are to be any, and wait until they are up."""
        if self.workers >= 2 and not self._ready():
            assert self._starting is not None
            self._starting.join()
            self._ready()

    def close(self) -> None:
        if self._starting is not None:
            self._starting.join()
        if self.pool is not None:
            self.pool.shutdown()
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
        self.pool, self._starting, self._folder = None, None, ""

    def _ready(self) -> bool:
        """Whether the workers are up; starts them the first time it is asked."""
        if self.pool is None:
            self._folder = tempfile.mkdtemp(prefix="datamill-near-dup-")
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
            forking = self.fork and threading.active_count() == 1
            context = multiprocessing.get_context("fork" if forking else "forkserver")
            if not forking:
                context.set_forkserver_preload(["datamill.checks.shingles"])
            self.pool = ProcessPoolExecutor(
                self.workers - 1, mp_context=context, initializer=keep_freed_memory
            )
            if forking:  # in this thread, now: the workers fork on the first call
                self._start()
            else:
                self._starting = threading.Thread(target=self._start, daemon=True)
                self._starting.start()
        if self._starting is not None and self._starting.is_alive():
            return False
        if self._failed is not None:
            raise self._failed
        return True

    def _start(self) -> None:
        assert self.pool is not None
        try:
            for started in [self.pool.submit(os.getpid) for _ in range(self.workers - 1)]:
                started.result()
        except BaseException as error:  # re-raised in the caller's thread
            self._failed = error
