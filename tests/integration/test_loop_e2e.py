"""The whole loop from one recipe (recipes/loop.yaml) on the embedded model: generate →
check → route → annotate through the HTTP API by simulated annotators (a real uvicorn
server, the Python client, users with tokens) → run again → resolve, with a tie that a
reviewer adjudicates through the API → export preference and SFT → loaded by ``datasets``
and checked with TRL's helpers → the HTML report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from annotate_web import PASSWORD, live_server

from support import embedded_backend, require

require("fastapi", "pip install 'datamill[annotate]'")

from datamill.annotate.adjudication import SNIPPET  # noqa: E402
from datamill.annotate.client import ApiError, Client  # noqa: E402
from datamill.pipeline import load_pipeline, run_pipeline  # noqa: E402
from datamill.store import Dataset  # noqa: E402

RECIPES = Path(__file__).parents[2] / "recipes"
N = 4
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] or '' }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def recipe(tmp_path: Path) -> Path:
    """recipes/loop.yaml and its policy, with shorter replies (the model runs on a CPU)."""
    (tmp_path / "policies").mkdir()
    shutil.copy(RECIPES / "policies" / "loop.yaml", tmp_path / "policies" / "loop.yaml")
    text = (RECIPES / "loop.yaml").read_text().replace("max_tokens: 96", "max_tokens: 48")
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    return path


def people(db_url: str, url: str) -> dict[str, Client]:
    """An admin made in the store (as `datamill serve` does on first start); through the
    API: two annotators in loop-review and a reviewer, each with a token."""
    from datamill.annotate import auth, db, service

    database = db.connect(db_url)
    with database.write() as s:
        admin = service.create_user(s, "root", auth.hash_password(PASSWORD), "admin")
        token = auth.issue_token(s, admin, "test")
    database.dispose()
    root = Client(url, token)
    for name, role in [("alice", "annotator"), ("bob", "annotator"), ("rita", "reviewer")]:
        root.create_user(name, PASSWORD, role)
    for name in ("alice", "bob"):
        root.add_member("loop-review", name)
    clients = {n: Client(url, root.create_token(n)) for n in ("alice", "bob", "rita")}
    return {"root": root, **clients}


def choice(job: dict[str, Any], wanted: str) -> str:
    """The screen letter of the candidate with text ``wanted`` (screen order is random)."""
    texts = [c["content"] for c in job["candidates"]]
    return "AB"[texts.index(wanted)]


def annotate(client: Client, candidates: dict[str, list[str]], contrary: int) -> int:
    """Answer every item: prefer each prompt's first candidate, except on the first
    ``contrary`` items. Returns how many items were answered."""
    done = 0
    while (job := client.next_item("loop-review")) is not None:
        prompt = job["messages"][0]["content"]
        first, second = candidates[prompt]
        wanted = second if done < contrary else first
        answers = {
            "pref": {"choice": choice(job, wanted)},
            "quality": {"accuracy": 4, "helpfulness": 3},
        }
        receipt = client.submit(job["assignment_id"], answers, {"seconds": 30})
        assert receipt["response_id"] > 0
        done += 1
    return done


def snippet(text: str) -> str:
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def check_exports(out: Path) -> None:
    require("datasets", "pip install 'datamill[dev]'")
    require("transformers", "pip install 'datamill[dev]'")
    trl = require("trl.data_utils", "pip install --no-deps 'trl>=1,<2' (see the Makefile)")
    import datasets
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words, unk_token="[UNK]", chat_template=CHATML
    )
    pairs = datasets.load_dataset("json", data_files=str(out / "preference.jsonl"))["train"]
    sft = datasets.load_dataset("json", data_files=str(out / "sft.jsonl"))["train"]
    assert len(pairs) == N and len(sft) == N
    assert set(pairs["preference_source"]) == {"consensus"}
    for example in pairs:
        assert trl.is_conversational(example)
        rendered = trl.maybe_apply_chat_template(
            {k: example[k] for k in ("prompt", "chosen", "rejected")}, tokenizer
        )
        assert all(isinstance(v, str) and v for v in rendered.values())
    unpaired = trl.unpair_preference_dataset(pairs.select_columns(["prompt", "chosen", "rejected"]))
    assert sum(unpaired["label"]) == len(pairs)
    for example in sft:
        assert trl.is_conversational(example)
        assert trl.maybe_apply_chat_template({"messages": example["messages"]}, tokenizer)["text"]


@pytest.mark.model
@pytest.mark.slow
def test_the_whole_loop_from_one_recipe(tmp_path: Path) -> None:
    embedded_backend()  # skip without the model (fail under CI)
    pipeline = load_pipeline(recipe(tmp_path))
    out = tmp_path / "out"
    db_url = f"sqlite:///{out / 'annotate.sqlite'}"

    first = run_pipeline(pipeline, out, n=N)
    assert [n for n, _ in first.steps] == ["generate", "check", "route", "annotate"]
    assert first.paused is not None
    assert f"0 of {N} items of project 'loop-review'" in first.paused
    assert f"datamill serve --db {db_url}" in first.paused

    dataset = Dataset.open(out / "dataset")
    routed = list(dataset.records(first.version))
    assert len(routed) == N and all(len(r.candidates) == 2 for r in routed)
    candidates = {r.messages[0].content: [c.content for c in r.candidates] for r in routed}

    with live_server(db_url) as url:
        clients = people(db_url, url)
        assert annotate(clients["alice"], candidates, contrary=0) == N
        # Half way: the run is still paused, saying how far the annotators are.
        half = run_pipeline(pipeline, out, n=N)
        assert [n for n, _ in half.steps] == ["annotate"]
        assert half.paused and f"0 of {N} items" in half.paused and "4 answers" in half.paused
        assert annotate(clients["bob"], candidates, contrary=1) == N  # one tie

        second = run_pipeline(pipeline, out, n=N)
        assert [n for n, _ in second.steps] == ["annotate", "resolve", "adjudicate"]
        assert second.paused and "loop-review-adjudication" in second.paused
        assert "--role reviewer" in second.paused
        resolved = list(dataset.records(second.version))
        waiting = [r for r in resolved if r.decisions["resolve"].outcome == "adjudicate"]
        assert len(waiting) == 1 and "pref" in waiting[0].decisions["resolve"].reason

        # An annotator never sees earlier answers, even inside an adjudication project.
        clients["root"].add_member("loop-review-adjudication", "alice")
        peek = clients["alice"].next_item("loop-review-adjudication")
        assert peek is not None and peek["review"] is None
        clients["alice"].skip(peek["assignment_id"])
        with pytest.raises(ApiError, match=r"HTTP 40[34]"):
            clients["bob"].next_item("loop-review-adjudication")  # not a member

        job = clients["rita"].next_item("loop-review-adjudication")
        assert job is not None and job["review"]["open"] == ["pref"]
        earlier = {row["annotator"]: row["answers"] for row in job["review"]["earlier"]}
        assert set(earlier) == {"alice", "bob"}
        first_text, second_text = candidates[job["messages"][0]["content"]]
        assert earlier["alice"]["pref"] == f"prefers: {snippet(first_text)}"
        assert earlier["bob"]["pref"] in {
            f"prefers: {snippet(t)}" for t in (first_text, second_text)
        }
        clients["rita"].submit(
            job["assignment_id"], {"pref": {"choice": choice(job, second_text)}}, {"seconds": 9}
        )
        assert clients["rita"].next_item("loop-review-adjudication") is None

    third = run_pipeline(pipeline, out, n=N)
    assert third.paused is None
    assert [n for n, _ in third.steps] == [
        *("adjudicate", "export", "export", "diversity", "report")
    ]
    final = {r.id: r for r in dataset.records(third.version)}
    decision = final[waiting[0].id].decisions["resolve"]
    assert (decision.outcome, decision.by) == ("adjudicated", "reviewer:rita")
    assert decision.details["questions"]["pref"]["value"]["chosen"] == 1  # the second candidate
    assert {r.decisions["resolve"].outcome for r in final.values()} == {"resolved", "adjudicated"}
    assert all(len(r.annotations) == 4 for r in final.values())  # 2 annotators × 2 questions
    check_exports(out / "exports")
    rows = [json.loads(line) for line in (out / "exports" / "preference.jsonl").open()]
    tie = next(row for row in rows if row["id"] == waiting[0].id)
    assert tie["chosen"][-1]["content"] == candidates[tie["prompt"][-1]["content"]][1]
    assert json.loads((out / "diversity.json").read_text())["comparison"]["changes"]
    html = (out / "report.html").read_text()
    assert "<script" not in html.lower() and "loop" in html

    # Run once more: nothing left to do but rewrite the files.
    again = run_pipeline(pipeline, out, n=N)
    assert [n for n, _ in again.steps] == ["export", "export", "diversity", "report"]
    assert again.version == third.version
