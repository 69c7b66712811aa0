"""The verdict says what it was judged on (issue 8): which checks ran, which were skipped and
why, in text and JSON; a sparkline per series with the findings marked; --plot says where."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.detectors import DETECTORS
from distill_doctor.findings import Finding, Severity
from distill_doctor.postmortem.coverage import NEEDS, coverage
from distill_doctor.postmortem.series import Series
from distill_doctor.render.sparkline import sparkline, sparklines


def run(*args: str):
    return CliRunner().invoke(app, ["postmortem", *args])


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_every_detector_has_a_coverage_line():
    assert set(NEEDS) == {cls.DOC.id for cls in DETECTORS}


def test_skipped_checks_say_why():
    checks = {c.id: c for c in coverage({"step": 12, "loss": 12, "eval_loss": 3, "lr": 12})}
    assert checks["loss-flat"].ran and checks["loss-flat"].detail == "12 loss points"
    assert checks["grad-explosion"].detail == "no grad_norm series"
    assert checks["overfitting"].detail == "fewer than 5 eval_loss points (3)"
    assert checks["loss-above-chance"].detail == "vocabulary size unknown (--vocab-size)"
    assert not checks["overfitting"].ran and not checks["grad-nonfinite"].ran


def test_json_and_text_say_what_a_healthy_verdict_rests_on(tmp_path):
    records = [{"step": s, "loss": 3.0 / (1 + s / 50), "lr": 1e-4} for s in range(1, 200)]
    path = write_jsonl(tmp_path / "run.jsonl", records)
    document = json.loads(run(path, "--format", "json").stdout)
    assert document["verdict"] == "healthy"
    cover = document["coverage"]
    assert cover["series"] == {"loss": 199, "lr": 199}
    skipped = {c["id"]: c["skipped_because"] for c in cover["checks"] if not c["ran"]}
    assert skipped["grad-nonfinite"] == "no grad_norm series"
    assert cover["checks_ran"] == len(cover["checks"]) - len(skipped)
    text = " ".join(run(path).stdout.replace("│", " ").split())
    assert "verdict: HEALTHY on loss (199 points), lr (199 points)" in text
    assert "skipped grad-explosion, grad-vanishing, grad-nonfinite: no grad_norm series" in text


def test_sparkline_marks_nonfinite_and_uses_a_log_scale_for_decades():
    series = Series()
    for step in range(100):
        series.add(step, 10.0 ** (step / 20))
    series.add(100, math.inf)
    line = sparkline("grad_norm", series, 0, 100, 20)
    assert line.line[0] == "▁" and line.line[-1] == "x" and "█" in line.line
    assert "log" in line.summary and "1 NaN/Inf" in line.summary
    # On a log scale a steady exponential is a steady ramp: no flat start then a wall.
    assert len(set(line.line[:-1])) >= 6


def test_findings_are_marked_at_their_columns_worst_first():
    series = Series()
    for step in range(1, 101):
        series.add(step, 1.0)
    findings = [
        Finding("loss-spike", "DD206", Severity.WARNING, "", step=50),
        Finding("nonfinite-loss", "DD202", Severity.ERROR, "", step=49),
        Finding("lr-zero", "DD201", Severity.ERROR, "", step=None),  # config: not on the curve
    ]
    (first, last), [line], marks = sparklines({"loss": series}, findings, width=10)
    assert (first, last) == (1, 100) and line.line == "▅" * 10
    assert marks == "    !"


def test_text_report_shows_the_curves_and_plot_says_where_it_wrote(tmp_path):
    records = [{"step": s, "loss": 2.0, "grad_norm": math.inf} for s in range(1, 40)]
    path = write_jsonl(tmp_path / "run.jsonl", [{**r, "grad_norm": "inf"} for r in records])
    plot = tmp_path / "curves.html"
    result = run(path, "--plot", str(plot))
    assert result.exit_code == 1
    assert "grad_norm" in result.stdout and "never finite" in result.stdout
    assert f"plot written to {plot.resolve()}" in result.stderr
    assert plot.exists()
