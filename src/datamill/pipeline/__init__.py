"""Recipes that run the whole flow: generate, then each stage of ``stages`` in order.

```yaml
name: support-loop
family: support
n: 200
stages:
  - check: {checks: [exact_dedup, length, safety]}
  - filter: {rules: [exact_dedup, length]}
  - export: {format: sft, out: exports/sft.jsonl}
```

A pipeline is resumable: each step that writes a dataset version is remembered in
``OUT/pipeline.json`` under a key made of its name, its parameters and the steps before
it, so running the recipe again skips what is done and goes on from where it stopped.
A step may also *pause* the run (annotate and adjudicate do, until annotators or reviewers
have answered in the app); running again picks it up. Stages: ``check``, ``filter``,
``route``, ``export`` (stages.py); ``annotate``, ``resolve``, ``adjudicate`` (human.py);
``report``, ``diversity`` (measure.py). ``recipes/loop.yaml`` uses most of them.
"""

from __future__ import annotations

from datamill.pipeline.model import Pipeline, StepSpec, load_pipeline
from datamill.pipeline.runner import PipelineResult, StepOutcome, run_pipeline

__all__ = [
    "Pipeline",
    "PipelineResult",
    "StepOutcome",
    "StepSpec",
    "load_pipeline",
    "run_pipeline",
]
