"""What a newcomer reads in a postmortem: one record count everywhere, a plot title and an HTML
page that say what happened before training and when nothing did."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.postmortem.analysis import analyze
from distill_doctor.postmortem.report import build_report
from distill_doctor.render.plot import _title

FIXTURES = Path(__file__).parent / "fixtures"


def run(*args: str):
    return CliRunner().invoke(app, ["postmortem", *args])


def events_with_preflight(tmp_path: Path) -> Path:
    """An events.jsonl as `doctor train` writes it: its pre-flight findings before step 1."""
    log = tmp_path / "events.jsonl"
    lines = [{"type": "run", "planned_steps": 4}]
    lines += [
        {"type": "finding", "id": rule, "code": code, "severity": "error", "message": "m"}
        for rule, code in (("scheduler-steps-mismatch", "DD101"), ("warmup-too-long", "DD102"))
    ]
    lines += [{"type": "metrics", "step": s, "lr": 1e-3, "loss": 3.0 - s / 10} for s in (1, 2, 4)]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return log


def test_records_count_the_same_in_the_summary_and_under_sources(tmp_path):
    log = str(events_with_preflight(tmp_path))
    document = json.loads(run(log, "--format", "json").stdout)
    [source] = document["sources"]
    assert source["records"] == document["records"] == 4  # the run line and 3 metrics lines
    assert source["logged_findings"] == 2
    text = " ".join(run(log).stdout.split())  # the console wraps long source lines anywhere
    assert "4 records up to step 4" in text
    assert "(events-jsonl): 4 records, 2 logged findings" in text


def test_plot_title_of_a_config_finding_says_before_training(tmp_path):
    report = build_report(analyze([events_with_preflight(tmp_path)]))
    assert report.first_problem is not None and report.first_problem.step is None
    title = _title(report)
    assert "before training (config): scheduler-steps-mismatch" in title
    assert "None" not in title


def test_html_of_a_healthy_run_says_no_findings(tmp_path):
    page = tmp_path / "healthy.html"
    result = run(str(FIXTURES / "events_healthy.jsonl"), "--plot", str(page))
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "No findings" in html and "<table>" not in html
    sick = tmp_path / "sick.html"
    run(str(FIXTURES / "seed_broken.log"), "--plot", str(sick))
    assert "No findings" not in sick.read_text() and "<table>" in sick.read_text()


def test_a_cpu_runs_throughput_drop_advises_for_a_cpu(tmp_path):
    # The trainer's run event says where it trained; the advice follows (no "GPU clocks").
    log = tmp_path / "events.jsonl"
    lines = [{"type": "run", "planned_steps": 60, "device": "cpu"}]
    lines += [
        {"type": "metrics", "step": s, "lr": 1e-3, "loss": 3.0 - s / 100, "steps_per_s": 10.0}
        for s in range(1, 61)
    ]
    for line in lines[40:]:
        line["steps_per_s"] = 2.0  # a fifth of the speed from step 40 on
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    document = json.loads(run(str(log), "--format", "json").stdout)
    [drop] = [f for f in document["findings"] if f["id"] == "throughput-drop"]
    assert drop["evidence"]["device"] == "cpu"
    assert "OMP_NUM_THREADS" in drop["fix"] and "GPU" not in drop["fix"]
    assert document["records"] == 61
