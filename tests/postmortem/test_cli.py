"""`doctor postmortem` end to end: exit codes, the JSON shape shared with `doctor check`, the
text report, the plot files, and no torch/transformers on its import path."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill_doctor.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
SEED_BROKEN = str(FIXTURES / "seed_broken.log")
SEED_CONFIG = str(FIXTURES / "seed_config.json")


def run(*args: str):
    return CliRunner().invoke(app, ["postmortem", *args])


def test_broken_seed_run_json_and_exit_1():
    result = run(SEED_BROKEN, "--config", SEED_CONFIG, "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["verdict"] == "sick"
    assert document["first_problem"]["id"] == "lr-zero"
    finding = document["findings"][0]
    assert set(finding) >= {"id", "code", "severity", "message", "evidence", "fix", "step"}
    assert {f["id"] for f in document["findings"]} >= {"lr-zero", "nonfinite-loss", "eval-frozen"}
    assert document["chains"][0]["findings"] == ["lr-zero"]
    [source] = document["sources"]
    assert source["format"] == "seed-text" and source["records"] == document["records"] > 30


def test_text_report_verdict_timeline_and_chain():
    result = run(SEED_BROKEN, "--config", SEED_CONFIG)
    assert result.exit_code == 1
    text = " ".join(result.stdout.split())
    assert text.index("verdict: SICK") < text.index("timeline") < text.index("symptom ->")
    assert "root cause: the scheduler, not the loss" in text
    assert "no weight updates" in text


def test_healthy_exit_0_and_no_data_exit_2(real_log):
    assert run(str(FIXTURES / "hf_stdout_v5_healthy.log")).exit_code == 0
    empty = run(str(real_log("hf_trainer_state_edge_empty_log_history.json")), "--format", "json")
    assert empty.exit_code == 2 and json.loads(empty.stdout)["verdict"] == "no-data"


@pytest.mark.parametrize(
    "args",
    [
        ["missing.log"],
        [str(FIXTURES / "seed_config.json")],  # a config, not a log
        [SEED_BROKEN, "--format-in", "nope"],
        [SEED_BROKEN, "--plot", "out.jpg"],
        [SEED_BROKEN, "--config", "missing.json"],
    ],
)
def test_input_errors_exit_2(args):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output


def test_two_files_of_one_run_merge_by_step(tmp_path):
    train = tmp_path / "train.jsonl"
    evals = tmp_path / "eval.jsonl"
    train.write_text(
        "".join(f'{{"step": {s}, "loss": {3 - s / 100}, "lr": 1e-3}}\n' for s in range(100))
    )
    evals.write_text(
        "".join(f'{{"step": {s}, "eval_loss": {2.9 - s / 200}}}\n' for s in (25, 50, 75))
    )
    result = run(str(train), str(evals), "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert [s["records"] for s in document["sources"]] == [100, 3]
    assert document["records"] == 103 and document["last_step"] == 99


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plot_png_and_html(tmp_path):
    png, page = tmp_path / "curves.png", tmp_path / "curves.html"
    assert run(SEED_BROKEN, "--plot", str(png)).exit_code == 1
    width, height = _png_size(png)
    assert width >= 600 and height >= 300 and 10_000 < png.stat().st_size < 500_000
    assert run(SEED_BROKEN, "--plot", str(page)).exit_code == 1
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "lr-zero" in html


def test_postmortem_imports_no_torch_or_transformers(tmp_path):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from distill_doctor.cli import app\n"
        f"result = CliRunner().invoke(app, ['postmortem', {SEED_BROKEN!r}, '--config', "
        f"{SEED_CONFIG!r}, '--plot', {str(tmp_path / 'p.png')!r}])\n"
        "assert result.exit_code == 1, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_logged_config_finding_reads_as_before_training(tmp_path):
    # `doctor train` logs its pre-flight config findings without a step.
    log = tmp_path / "events.jsonl"
    log.write_text(
        '{"type": "run", "planned_steps": 10}\n'
        '{"type": "finding", "id": "warmup-too-long", "code": "DD102", "severity": "error", '
        '"message": "Warmup lasts 18 steps but only 2 optimizer steps run.", "step": null}\n'
        '{"type": "metrics", "step": 1, "lr": 0.001, "loss": 3.0}\n'
    )
    result = run(str(log))
    assert result.exit_code == 1
    assert "before training (config)" in result.stdout and "step None" not in result.stdout


def test_stray_numbers_that_never_advance_a_step_are_no_data(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("We tried lr=20 first.\nThen the LR=0 bug appeared.\nloss=3.2 was printed.\n")
    result = run(str(notes), "--format", "json")
    assert result.exit_code == 2 and json.loads(result.stdout)["verdict"] == "no-data"
