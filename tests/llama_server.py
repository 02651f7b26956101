"""llama.cpp's OpenAI-compatible server on the shipped model, for tests that need a real one.

A module starts it once (it takes seconds to load and holds the model in memory):

    @pytest.fixture(scope="module")
    def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with llama_server(tmp_path_factory.mktemp("llama-server")) as url:
            yield url

It skips (fails under CI) without ``llama_cpp.server`` or the model. The server takes one
request at a time and does not check the model name; it understands structured output as
``json_object`` with a schema, so backends pointed at it use ``structured="json_object"``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support import free_port, require, skip_or_fail, stop

MODEL = "smollm2"
STARTUP_SECONDS = 180


@contextmanager
def llama_server(log_dir: Path, n_ctx: int = 2048) -> Iterator[str]:
    """Run the server on loopback until the block ends; yields its base URL (``…/v1``)."""
    require("llama_cpp.server.app", "pip install 'datamill[server]'")
    from datamill.errors import MissingDependency
    from datamill.llm.embedded import default_model_path

    try:
        model = default_model_path()
    except MissingDependency as e:
        skip_or_fail(str(e))
    port = free_port()
    log = log_dir / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "llama_cpp.server", "--model", str(model)),
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--n_ctx", str(n_ctx), "--verbose", "False"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/v1/models", proc, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc, 30)


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"llama_cpp.server did not answer in {STARTUP_SECONDS}s:\n{log.read_text()}"
            )
        time.sleep(0.2)
