"""``datamill calibrate --judges``: several judges are each measured, and their majority."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from datamill.llm.stub_server import StubServer
from support import require

TIE = json.dumps({"rationale": "both are fine", "winner": "tie"})


def test_calibrate_reports_each_judge_and_their_majority(tmp_path: Path) -> None:
    require("sklearn", "pip install 'datamill[quality]'")
    figures, judges = tmp_path / "figures.json", tmp_path / "judges.yaml"
    with StubServer() as first, StubServer() as second, StubServer() as third:
        second.reply("", *[TIE] * 12)  # says tie in both orders: consistent
        third.reply("", *[TIE] * 12)
        judges.write_text(
            "".join(
                f"- {{kind: openai, base_url: '{s.url}', model: judge{i}}}\n"
                for i, s in enumerate((first, second, third))
            )
        )
        out = subprocess.run(
            [sys.executable, "-m", "datamill", "calibrate", "--reference", "llmbar-mtbench",
             "--limit", "6", "--judges", str(judges), "--out", str(figures)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    shown = " ".join(out.stdout.split())
    assert "the 3 judges' majority vs humans on llmbar-mtbench" in shown
    assert "judge 0:openai:judge0" in shown and "judge 2:openai:judge2" in shown
    result = json.loads(figures.read_text())
    each = {j["judge"].split(":")[0]: j for j in result["judges"]}
    assert sorted(each) == ["0", "1", "2"]
    assert each["0"]["no_verdict"] == 6 and each["0"]["position_bias"]["first"] == 1.0
    assert each["1"]["no_verdict"] == 0 and each["1"]["accuracy_half_ties"] == 0.5
    # Two of three say tie on every pair: the majority is a tie, half a point each.
    assert result["items"] == 6 and result["no_verdict"] == 0
    assert result["accuracy_half_ties"] == 0.5 and result["position_bias"]["pairs"] == 0


def test_judges_file_errors_are_one_clear_line(tmp_path: Path) -> None:
    judges = tmp_path / "judges.yaml"
    judges.write_text("kind: embedded\n")
    out = subprocess.run(
        [sys.executable, "-m", "datamill", "calibrate", "--judges", str(judges)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1 and "expected a list of judge backends" in out.stderr
    judges.write_text("- {kind: openai}\n")
    out = subprocess.run(
        [sys.executable, "-m", "datamill", "calibrate", "--judges", str(judges),
         "--model", "x"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1 and "not both" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "datamill", "calibrate", "--judges", str(judges)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1 and "needs base_url and model" in out.stderr
