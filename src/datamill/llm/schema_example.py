"""A deterministic instance of a JSON schema, so a stub server can answer structured requests.

Covers what pydantic emits: objects (required and optional properties), arrays with
``minItems``, strings with ``enum``/``const``/``minLength``, numbers with bounds, booleans,
``anyOf``/``oneOf``/``allOf``, ``$ref`` into ``$defs`` and nullable types. The text of each
string is derived from ``seed`` and the property path, so different requests differ.
"""

from __future__ import annotations

import hashlib
from typing import Any


def example(schema: dict[str, Any], seed: str = "") -> Any:
    return _example(schema, schema, seed, "$")


def _word(seed: str, path: str) -> str:
    return hashlib.sha256(f"{seed}{path}".encode()).hexdigest()[:8]


def _example(node: dict[str, Any], root: dict[str, Any], seed: str, path: str) -> Any:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _example(root.get("$defs", {})[name], root, seed, path)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [o for o in node[key] if o.get("type") != "null"] or node[key]
            return _example(options[0], root, seed, path)
    if "allOf" in node:
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            merged.update(part)
        return _example(merged, root, seed, path)
    kind = node.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = node.get("properties", {})
        return {
            name: _example(sub, root, seed, f"{path}.{name}") for name, sub in properties.items()
        }
    if kind == "array":
        count = max(node.get("minItems", 2), 1)
        items = node.get("items", {"type": "string"})
        return [_example(items, root, seed, f"{path}[{i}]") for i in range(count)]
    if kind == "string":
        text = f"{path.rsplit('.', 1)[-1]} {_word(seed, path)}"
        return text.ljust(node.get("minLength", 0), "x")[: node.get("maxLength", len(text) + 99)]
    if kind in ("integer", "number"):
        low = node.get("minimum", node.get("exclusiveMinimum", 0))
        value = max(low, 1) if node.get("maximum", 1) >= 1 else low
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None
