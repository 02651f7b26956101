"""Helpers for tests that need an optional part.

Such tests skip with a clear reason on a developer's machine that lacks the part, but fail
under CI=true, where every part must be present: a missing part must never turn into a
silently green run.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from datamill.llm.config import BackendConfig
    from datamill.records import Record
    from datamill.store import Version

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(module: str, why: str) -> ModuleType:
    """Import ``module``, or skip (fail under CI) saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        skip_or_fail(f"{module} is not installed: {why}")
        raise


def free_port() -> int:
    """A loopback port free at the moment of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Ask a server process to end; kill it if it has not within ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine, fail under CI."""
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def embedded_backend():  # type: ignore[no-untyped-def]
    """The embedded backend on the shipped model, or skip (fail under CI)."""
    require("llama_cpp", "pip install 'datamill[embedded]'")
    from datamill.errors import MissingDependency
    from datamill.llm.embedded import EmbeddedBackend, default_model_path

    try:
        default_model_path()
    except MissingDependency as e:
        skip_or_fail(str(e))
    return EmbeddedBackend()


def run_family(
    family: str,
    out: Path,
    n: int,
    params: dict[str, Any] | None = None,
    backend: BackendConfig | None = None,
    seed: int = 0,
) -> tuple[list[Record], Version]:
    """Run a task family through the real recipe runner into a dataset under ``out``.

    ``backend`` defaults to the embedded model; pass ``BackendConfig(kind="openai",
    base_url=stub.url, model="stub")`` to run against a StubServer.
    """
    import asyncio

    from datamill.generate.run import run_generation
    from datamill.llm.config import BackendConfig
    from datamill.recipe import Recipe
    from datamill.store import Dataset

    recipe = Recipe(
        name=f"test-{family}",
        family=family,
        n=n,
        seed=seed,
        params=params or {},
        backends={"generator": backend or BackendConfig(kind="embedded")},
    )
    dataset = Dataset.create(out)
    version = asyncio.run(run_generation(recipe, dataset))
    return list(dataset.records(version.version)), version


def chat(prompt: str, reply: str | None = None, **fields: Any) -> Record:
    """A one-turn record: the user's prompt and, if given, the assistant's reply."""
    from datamill.records import Message, Provenance, Record

    messages = [Message(role="user", content=prompt)]
    if reply is not None:
        messages.append(Message(role="assistant", content=reply))
    return Record(messages=messages, provenance=Provenance(source="imported"), **fields)


def oasst_replies() -> list[Record]:
    """Every assistant reply in tests/data/oasst's trees, after its prompt, with its language."""
    import json

    records: list[Record] = []

    def walk(node: dict[str, Any]) -> None:
        for reply in node.get("replies", []):
            if reply["role"] == "assistant":
                records.append(chat(node["text"], reply["text"], language=reply["lang"]))
            walk(reply)

    path = Path(__file__).parent / "data" / "oasst" / "en_100_tree_head20.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        walk(json.loads(line)["prompt"])
    return records
