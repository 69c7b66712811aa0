"""A detector that raises does not take `doctor postmortem` down: it is switched off, the other
checks go on, and the report names it as a check that did not finish (never "healthy" on it)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.detectors import DetectorSuite, run_detectors
from distill_doctor.detectors.loss_spike import LossSpike
from distill_doctor.detectors.lr_zero import LrZero
from distill_doctor.postmortem.analysis import analyze


def broken(*_args, **_kwargs):
    raise ZeroDivisionError("division by zero")


def write_log(tmp_path, lr: float = 1e-4):
    records = [{"step": s, "loss": 3.0 / (1 + s / 50), "lr": lr} for s in range(1, 200)]
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("method", ["update", "update_many", "finish"])
def test_a_crashing_detector_is_switched_off_and_the_rest_still_judge(
    tmp_path, monkeypatch, method
):
    monkeypatch.setattr(LossSpike, method, broken)
    if method == "update":  # the batch path hands unusual records to update: force it there
        monkeypatch.delattr(LossSpike, "update_many")
    analysis = analyze([write_log(tmp_path, lr=0.0)])
    assert analysis.crashed.keys() == {"loss-spike"}
    assert analysis.crashed["loss-spike"].startswith("ZeroDivisionError: division by zero")
    assert "lr-zero" in {f.id for f in analysis.findings}  # the other detectors went on


def test_the_crash_names_its_step(tmp_path, monkeypatch):
    monkeypatch.setattr(LossSpike, "update_many", broken)
    analysis = analyze([write_log(tmp_path)])
    assert analysis.crashed["loss-spike"].endswith("in the records from step 1")


def test_a_crashed_check_is_not_called_healthy(tmp_path, monkeypatch):
    path = str(write_log(tmp_path))
    monkeypatch.setattr(LossSpike, "update_many", broken)
    result = CliRunner().invoke(app, ["postmortem", path, "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    checks = {c["id"]: c for c in json.loads(result.stdout)["coverage"]["checks"]}
    assert not checks["loss-spike"]["ran"]
    assert checks["loss-spike"]["skipped_because"].startswith("the check crashed: ZeroDivision")
    assert checks["loss-flat"]["ran"]
    text = CliRunner().invoke(app, ["postmortem", path]).stdout
    assert "Traceback" not in text and "crashed" in text


def test_the_record_by_record_path_is_guarded_too(monkeypatch):
    monkeypatch.setattr(LrZero, "update", broken)
    suite = DetectorSuite()
    for step in range(1, 50):
        suite.update({"step": step, "loss": 2.0, "lr": 0.0})
    suite.finish()
    assert suite.crashed == {"lr-zero": "ZeroDivisionError: division by zero at step 1"}


def test_a_crash_at_the_end_says_so(monkeypatch):
    monkeypatch.setattr(LossSpike, "finish", broken)
    findings = run_detectors({"step": s, "loss": float("nan")} for s in range(1, 5))
    assert "nonfinite-loss" in {f.id for f in findings}  # the others still finish
    suite = DetectorSuite()
    suite.update({"step": 1, "loss": 2.0})
    suite.finish()
    assert suite.crashed["loss-spike"].endswith("at the end of the run")
