"""A backend for any OpenAI-compatible chat completions server.

vLLM, TGI, llama.cpp's server, Ollama and hosted APIs all speak this protocol. The client
is datamill's own small keep-alive HTTP/1.1 client (``datamill.llm.http``, chosen over
aiohttp and httpx by measurement). Redirects are refused: a POST must not be replayed to
another address without the user saying so. The API key is read from the environment
variable the user names and is never stored anywhere else.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from datamill.errors import DatamillError, LLMError
from datamill.llm.base import ChatRequest, Completion
from datamill.llm.http import Client, HTTPError, route

# How to ask for JSON output: OpenAI and vLLM take `json_schema`; llama.cpp's server and
# some others take `json_object` with a `schema`; older vLLM takes `guided_json`.
StructuredMode = Literal["json_schema", "json_object", "guided_json"]

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps's, made once


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class OpenAICompatBackend:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        max_connections: int = 0,
        structured: StructuredMode = "json_schema",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        route(self.base_url)  # a malformed address or proxy is an error now, not at the first call
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_connections = max_connections  # 0: as many as the caller's concurrency
        self.structured = structured
        if api_key_env and not os.environ.get(api_key_env):
            raise DatamillError(f"the environment variable {api_key_env} (API key) is not set")
        self._client: Client | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.api_key_env]}"
        return headers

    def _client_now(self) -> Client:
        client = self._client
        # A new event loop (another asyncio.run) cannot use the last one's connections.
        if client is None or client.closed or client.loop not in (None, asyncio.get_running_loop()):
            if client is not None:
                client.close_now()
            self._client = Client(
                self.base_url, self._headers(), max_connections=self.max_connections
            )
        return self._client

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.message_dicts(),
            **request.sampling(),
        }
        schema = request.json_schema
        if schema is not None:
            if self.structured == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": schema},
                }
            elif self.structured == "json_object":
                body["response_format"] = {"type": "json_object", "schema": schema}
            else:
                body["guided_json"] = schema
        return body

    async def complete(self, request: ChatRequest) -> Completion:
        client = self._client_now()
        body = _ENCODE(self.payload(request)).encode()
        start = time.perf_counter()
        try:
            response = await client.post("/chat/completions", body, self.timeout)
        except TimeoutError:
            raise LLMError("timeout", f"no answer within {self.timeout}s", retryable=True) from None
        except HTTPError as e:
            raise LLMError("connection", str(e), retryable=e.retryable) from None
        raw, status = response.body, response.status
        if 300 <= status < 400:
            location = response.headers.get("location", "nowhere")
            raise LLMError(
                "redirect",
                f"{self.base_url} answered {status}, redirecting to {location}; datamill does not"
                " follow redirects: set base_url to the address the server should be reached at",
            )
        retry_after = _retry_after(response.headers.get("retry-after"))
        seconds = time.perf_counter() - start
        if status != 200:
            cause = "rate_limited" if status == 429 else f"http_{status}"
            detail = raw[:500].decode("utf-8", "replace")
            raise LLMError(
                cause,
                detail,
                retryable=status in RETRYABLE_STATUS or status >= 500,
                retry_after=retry_after,
            )
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            detail = raw[:200].decode("utf-8", "replace")
            raise LLMError(
                "bad_response", f"not a chat completion: {detail}", retryable=True
            ) from None
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            seconds=seconds,
            model=self.model,
            backend=self.name,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
