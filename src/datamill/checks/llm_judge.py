"""What every model-backed check shares: its judges, its prompt, and failures kept as data.

A model-backed check takes its backends the way recipes name them: ``backend`` is one
:class:`BackendConfig` mapping or a list of them (several judges), or ``base_url`` and
``model`` for one OpenAI-compatible server; by default, the embedded model. Engines are
built on first use, inside the running event loop, and closed by :meth:`aclose`.

A call that fails, or whose output does not follow the schema, is never a crash and never a
made-up score: the result says which judge failed and why, and keeps the raw text. Every
judged record also gets a ``judge`` entry in its provenance (``provenance.params["judge"]``)
naming, per check, the prompt, its version and the models that judged.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, JsonValue, ValidationError

from datamill.checks import judge_prompts
from datamill.checks.base import BatchCheck
from datamill.errors import LLMError
from datamill.llm.base import Backend, ChatRequest, Completion
from datamill.llm.config import BackendConfig
from datamill.llm.engine import Engine, Outcome, usage_of
from datamill.records import Record

BackendOption = str | dict[str, Any] | BackendConfig | list[Any] | None
RAW_KEPT = 4000  # characters of a failed answer kept on the record
JUDGE_SEED_STRIDE = 1_000_003


def backend_configs(
    backend: BackendOption = None, base_url: str | None = None, model: str | None = None
) -> list[BackendConfig]:
    """The judges' backends from a check's options (see the module docstring)."""
    if backend is None:
        kind = "openai" if base_url else "embedded"
        return [BackendConfig(kind=kind, base_url=base_url, model=model)]
    if base_url is not None or model is not None:
        raise ValueError("give either backend, or base_url and model, not both")
    items = backend if isinstance(backend, list) else [backend]
    if not items:
        raise ValueError("backend is an empty list; name at least one judge")
    configs = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"kind": item}
        if isinstance(item, BackendConfig):
            configs.append(item)
            continue
        if not isinstance(item, dict):
            raise ValueError(f"backend {i}: expected a mapping such as {{kind: embedded}}")
        try:
            configs.append(BackendConfig.model_validate(item))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"backend {i}: {where}: {first['msg']}") from None
    for config in configs:
        if config.kind == "openai" and not (config.base_url and config.model):
            raise ValueError("an openai backend needs base_url and model")
    return configs


def failure(outcome: Outcome) -> dict[str, JsonValue]:
    """Why a call failed, with the raw answer if there was one."""
    error = outcome.error
    assert error is not None
    raw = (error.raw or "")[:RAW_KEPT]
    return {"cause": error.cause, "message": error.detail[:500], "raw": raw}


class JudgeCheck(BatchCheck):
    """A check that asks one or more models, through a versioned prompt, about records.

    A subclass's ``__init__`` declares only its own options and passes ``**shared`` on;
    the shared ones below are added to its signature, which is what the registry reads
    (``datamill check --list``, unknown-option errors). It may redeclare a shared option
    to give it another default.
    """

    prompt_name: ClassVar[str]
    batch_size = 64

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = inspect.signature(cls.__init__)
        params = [p for p in own.parameters.values() if p.kind != p.VAR_KEYWORD]
        names = {p.name for p in params}
        shared = inspect.signature(JudgeCheck.__init__).parameters.values()
        params += [p for p in shared if p.name not in names]
        cls.__init__.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]

    def __init__(
        self,
        backend: BackendOption = None,
        base_url: str | None = None,
        model: str | None = None,
        cache: str | None = None,
        prompt: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int = 0,
        max_chars: int = 6000,
    ) -> None:
        """``backend``: a backend mapping, or a list of them for several judges (default:
        the embedded model); or ``base_url`` and ``model`` of one OpenAI-compatible server.
        ``cache``: a request cache file, so a repeated run pays nothing twice. ``prompt``: a
        YAML prompt file replacing the shipped one. ``max_chars``: each text quoted in the
        prompt is cut to this many characters."""
        if not 0 <= temperature <= 2 or min(max_tokens, max_chars) < 1:
            raise ValueError("temperature must be in [0, 2], max_tokens and max_chars positive")
        self.configs = backend_configs(backend, base_url, model)
        self.template = judge_prompts.load(self.prompt_name, prompt)
        self.cache = Path(cache) if cache else None
        self.temperature, self.max_tokens, self.seed = temperature, max_tokens, seed
        self.max_chars = max_chars
        self._engines: list[Engine] | None = None

    @property
    def engines(self) -> list[Engine]:
        if self._engines is None:
            self._engines = [config.engine(self.cache) for config in self.configs]
            for engine in self._engines:
                engine.backend = _Contained(engine.backend)
        return self._engines

    @property
    def judges(self) -> list[str]:
        """A label per judge: its place and model (two judges may run one model)."""
        return [f"{i}:{e.identity}" for i, e in enumerate(self.engines)]

    @property
    def prompt_info(self) -> dict[str, JsonValue]:
        return {"name": self.template.name, "version": self.template.version}

    def quote(self, label: str, text: str) -> str:
        """Untrusted text for the prompt: between markers, at most ``max_chars`` long."""
        return judge_prompts.quote(label, text, self.max_chars)

    def request(self, **variables: Any) -> ChatRequest:
        return ChatRequest(
            messages=self.template.render(**variables),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )

    async def ask_all(
        self, requests: Sequence[ChatRequest], schema: type[BaseModel] | None
    ) -> list[list[Outcome]]:
        """Every request to every judge at once: outcomes by judge, then by request.

        Judge ``j`` adds ``j * JUDGE_SEED_STRIDE`` to each request's seed: with a
        temperature above 0, several judges on one model sample independently."""

        if not requests:  # nothing to ask: no engine is built, no model loaded
            return [[] for _ in self.configs]

        async def one(judge: int, engine: Engine) -> list[Outcome]:
            seeded = [
                r.model_copy(update={"seed": (r.seed or 0) + judge * JUDGE_SEED_STRIDE})
                for r in requests
            ]
            return [o async for o in engine.map(seeded, schema=schema)]

        return list(await asyncio.gather(*(one(j, e) for j, e in enumerate(self.engines))))

    def usage(self, outcomes: Sequence[Outcome]) -> dict[str, JsonValue]:
        return usage_of(*outcomes).model_dump(mode="json")

    def base_details(self, outcomes: Sequence[Outcome]) -> dict[str, JsonValue]:
        """What every result of a record judged once per judge says: the prompt, each
        judge's failure, and the usage of the calls."""
        failures: list[JsonValue] = [
            {"judge": j, **failure(o)}
            for j, o in zip(self.judges, outcomes, strict=True)
            if not o.ok
        ]
        return {"prompt": self.prompt_info, "failures": failures, "usage": self.usage(outcomes)}

    async def _checked(self, batch: list[Record]) -> list[Record]:
        done = await super()._checked(batch)
        if self._engines is None:  # no model was asked (say, grounding without a judge)
            return done
        entry = {**self.prompt_info, "models": [e.identity for e in self._engines]}
        return [
            _with_judge_entry(r, self.name, entry)
            if "usage" in r.checks[self.name].details  # it was sent to the judges
            else r
            for r in done
        ]

    async def aclose(self) -> None:
        for engine in self._engines or []:
            await engine.aclose()
        self._engines = None


class _Contained:
    """A backend whose unexpected errors (say, llama.cpp refusing a prompt longer than its
    context) become failed calls of the record at hand instead of ending the whole run."""

    def __init__(self, backend: Backend) -> None:
        self.inner, self.name, self.model = backend, backend.name, backend.model

    async def complete(self, request: ChatRequest) -> Completion:
        try:
            return await self.inner.complete(request)
        except LLMError:
            raise
        except (ValueError, RuntimeError, OSError) as e:
            raise LLMError("backend_error", f"{type(e).__name__}: {e}") from None

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


def _with_judge_entry(record: Record, check: str, entry: dict[str, JsonValue]) -> Record:
    params = record.provenance.params
    judged = params.get("judge")
    judged = {**judged, check: entry} if isinstance(judged, dict) else {check: entry}
    provenance = record.provenance.model_copy(update={"params": {**params, "judge": judged}})
    return record.model_copy(update={"provenance": provenance})
