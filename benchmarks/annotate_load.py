"""Load on the annotation app: N simulated annotators over loopback, each with its own API
token, loop "next item, submit" as fast as the server answers, on SQLite and on PostgreSQL.

Prints throughput and p50/p99 latency of both calls, one line per figure, then checks the
database: no item may have more submissions than its overlap, and every submission the
clients saw accepted must be stored. Goal: p99 < 50 ms at 100 annotators, zero items over.

In the same run, Label Studio (installed on first use into benchmarks/.venv-labelstudio)
gets the equivalent workload: the same annotators, tasks and overlap (its
``maximum_annotations``), next task through its labeling stream, one choice submitted.

    .venv/bin/python benchmarks/annotate_load.py [--annotators 100] [--items 600]
        [--overlap 3] [--seconds 40] [--workers N] [--db sqlite,postgres] [--think 0,10]
        [--no-labelstudio]

``--think`` is the mean time an annotator spends on an item between next and submit (and
before the first next). 0 is a stress test: every annotator fires its next request the moment
the last one returns, so latency is mostly queueing; 10 s is a fast human.

Each run also says how much CPU the server processes and this client (which shares the
machine with them) spent per submission, and the load average when it ended: on a shared
machine the slowest requests are mostly waits for a core. It also says how long the disk
took to make an 8 kB append durable meanwhile (``fsync_probe.py``): every PostgreSQL commit
waits for one such flush of its log, so the disk's stalls are PostgreSQL's slowest commits.
Set ``DATAMILL_SLOW_MS=25`` to have the server log each slower request with its phases.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from fsync_probe import Probe  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
QUESTIONS = [
    {"type": "label", "name": "verdict", "options": ["good", "bad"]},
    {"type": "rubric", "name": "quality", "criteria": [{"name": "accuracy"}, {"name": "tone"}]},
]
ANSWERS = {"verdict": "good", "quality": {"accuracy": 4, "tone": 5}}


@dataclass
class Run:
    """What the simulated annotators saw."""

    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    submitted: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds, all server processes
    client_cpu: float = 0.0  # seconds, this process while it drove the load
    disk: str = ""  # the fdatasync probe's summary over the run


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def report(name: str, run: Run) -> None:
    rate = run.submitted / run.seconds
    print(f"{name}: throughput {rate:.1f} submits/s ({run.submitted} in {run.seconds:.1f} s)")
    for what, values in (("next", run.next_ms), ("submit", run.submit_ms)):
        print(f"{name}: {what} p50 {pct(values, 0.5):.1f} ms")
        print(f"{name}: {what} p99 {pct(values, 0.99):.1f} ms")
    print(f"{name}: errors {run.errors}")
    if run.disk:
        print(f"{name}: disk meanwhile: {run.disk}")
    if run.submitted and run.server_cpu:
        per = 1000 / run.submitted
        print(
            f"{name}: CPU per submission (with its next) server {run.server_cpu * per:.1f} ms, "
            f"client {run.client_cpu * per:.1f} ms; load average {os.getloadavg()[0]:.1f}"
        )


async def think(seconds: float) -> None:
    """A person reading and answering: uniform in 0.5..1.5 times the mean."""
    if seconds > 0:
        await asyncio.sleep(seconds * random.uniform(0.5, 1.5))


async def annotator(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    project: str,
    run: Run,
    stop: float,
    pause: float,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    await think(pause)  # annotators do not all start in the same millisecond
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        async with http.get(f"{url}/api/projects/{project}/next", headers=headers) as r:
            body = await r.json() if r.status == 200 else None
            run.next_ms.append((time.perf_counter() - t0) * 1000)
            if r.status == 204:
                return
            if r.status != 200:
                run.errors += 1
                continue
        await think(pause)
        t0 = time.perf_counter()
        submit = f"{url}/api/assignments/{body['assignment_id']}/submit"
        async with http.post(submit, json={"answers": ANSWERS}, headers=headers) as r:
            await r.read()
            run.submit_ms.append((time.perf_counter() - t0) * 1000)
            if r.status == 200:
                run.submitted += 1
            else:
                run.errors += 1


async def drive(url: str, tokens: list[str], project: str, seconds: float, pause: float) -> Run:
    run = Run()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.monotonic()
        stop = start + seconds
        await asyncio.gather(*(annotator(http, url, t, project, run, stop, pause) for t in tokens))
        run.seconds = time.monotonic() - start
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children (uvicorn's workers), from /proc."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(
    server: tuple[str, int], tokens: list[str], project: str, seconds: float, pause: float
) -> Run:
    """``drive`` with the CPU that the server and this client spent meanwhile."""
    url, pid = server
    server0, client0 = cpu_seconds(pid), own_cpu()
    with Probe() as probe:
        run = asyncio.run(drive(url, tokens, project, seconds, pause))
    run.server_cpu = cpu_seconds(pid) - server0
    run.client_cpu = own_cpu() - client0 - probe.cpu
    run.disk = probe.summary()
    return run


@contextlib.contextmanager
def serve(db_url: str, workers: int) -> Iterator[tuple[str, int]]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "datamill.annotate.app:app_from_env"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    cmd += ["--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env={**os.environ, "DATAMILL_DB": db_url})
    try:
        wait_port(port, proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(20)


def setup(db_url: str, annotators: int, items: int, overlap: int) -> list[str]:
    """Schema, project, items and one token per annotator, straight into the store."""
    from datamill.annotate import auth, db, service
    from datamill.records import Message, Provenance, Record
    from datamill.store import Dataset

    database = db.connect(db_url)
    db.migrate(database.engine)
    hashed = auth.hash_password("load-test")
    tokens = []
    with tempfile.TemporaryDirectory() as tmp:
        records = (
            Record(
                messages=[
                    Message(role="user", content=f"Question {i}: what is {i} + {i}?"),
                    Message(role="assistant", content=f"It is {2 * i}."),
                ],
                provenance=Provenance(source="synthetic"),
            )
            for i in range(items)
        )
        Dataset.create(tmp).write(records, stage="import")
        with database.write() as s:
            project = service.create_project(s, "load", QUESTIONS, overlap=overlap)
            service.push_dataset(s, tmp, None, project)
            for i in range(annotators):
                user = service.create_user(s, f"a{i}", hashed, "annotator")
                service.add_member(s, project, user)
                tokens.append(auth.issue_token(s, user, "load"))
    database.dispose()
    return tokens


def verify(db_url: str, overlap: int, accepted: int) -> tuple[int, int]:
    """(items with more submissions than the overlap, submissions lost)."""
    from sqlalchemy import func, select

    from datamill.annotate import db
    from datamill.annotate.models import Response

    database = db.connect(db_url)
    with database.read() as s:
        per_item = (
            select(Response.item_id, func.count().label("n")).group_by(Response.item_id).subquery()
        )
        over = s.scalar(select(func.count()).select_from(per_item).where(per_item.c.n > overlap))
        stored = s.scalar(select(func.count()).select_from(Response))
    database.dispose()
    return over or 0, accepted - (stored or 0)


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/load.sqlite"
        return
    import psycopg

    name = f"dmload_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes (default: 1 on SQLite, whose writers then queue in-process "
        "instead of in SQLite's sleeping busy handler; 2 on PostgreSQL)",
    )
    parser.add_argument(
        "--think",
        default="0,10",
        help="mean seconds an annotator spends on an item, one run each (0: no pause at all)",
    )
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--no-labelstudio", action="store_true")
    args = parser.parse_args()
    print(
        f"workload: {args.annotators} annotators, {args.items} items, overlap {args.overlap}, "
        f"at most {args.seconds:.0f} s a run, {args.workers or 'auto'} server workers, "
        f"think time {args.think} s"
    )
    results: dict[str, Run] = {}
    thinks = [float(t) for t in args.think.split(",")]
    for pause in thinks:
        for kind in args.db.split(","):
            with database(kind) as url:
                tokens = setup(url, args.annotators, args.items, args.overlap)
                workers = args.workers or (1 if kind == "sqlite" else 2)
                with serve(url, workers) as server:
                    run = measured(server, tokens, "load", args.seconds, pause)
                over, lost = verify(url, args.overlap, run.submitted)
            name = f"datamill {kind} think {pause:g}s"
            report(name, run)
            print(f"{name}: items over their overlap {over}, submissions lost {lost}")
            results[name] = run
    ls_name = f"label-studio sqlite think {thinks[0]:g}s"
    if not args.no_labelstudio:
        from labelstudio_load import measure

        ls = measure(args.annotators, args.items, args.overlap, args.seconds, thinks[0])
        if ls is not None:
            report(ls_name, ls.run)
            print(f"{ls_name}: tasks over their limit {ls.over}")
            results[ls_name] = ls.run
    summary = []
    for name, run in results.items():
        p50 = max(pct(run.next_ms, 0.5), pct(run.submit_ms, 0.5))
        p99 = max(pct(run.next_ms, 0.99), pct(run.submit_ms, 0.99))
        rate = run.submitted / run.seconds
        summary.append(f"{name} {rate:.0f}/s p50 {p50:.0f} ms p99 {p99:.0f} ms")
    ours, theirs = results.get(f"datamill sqlite think {thinks[0]:g}s"), results.get(ls_name)
    if ours and theirs and theirs.submitted:
        ratio = (ours.submitted / ours.seconds) / (theirs.submitted / theirs.seconds)
        summary.append(f"throughput datamill/label-studio on SQLite {ratio:.1f}x")
    summary.append(f"load average {os.getloadavg()[0]:.1f}")
    print("summary: " + "; ".join(summary))


if __name__ == "__main__":
    main()
