"""LLM backends: one protocol, an embedded llama.cpp model, OpenAI-compatible servers."""

from datamill.llm.base import Backend, ChatRequest, Completion

__all__ = ["Backend", "ChatRequest", "Completion"]
