"""Output formats: the JSON shape, SARIF 2.1.0's required structure, the text report."""

from __future__ import annotations

import json

import pytest

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import all_docs
from distill_doctor.render.sarif import render_sarif
from distill_doctor.render.text import captured, format_value, render_text

ERROR = Finding(
    "scheduler-steps-mismatch",
    "DD101",
    Severity.ERROR,
    "told 7 steps",
    {"told": 7, "ratio": 0.0625},
    fix="unset it",
    patch={"num_training_steps": None},
)
WARNING = Finding("warmup-too-long", "DD102", Severity.WARNING, "warmup 30%", {"share": 0.3})
INFO = Finding("made-up-info", "DD999", Severity.INFO, "just so", {})


def test_json_shape(doctor, seed_path):
    result = doctor("check", seed_path, "--format", "json")
    report = json.loads(result.stdout)
    assert report["config"] == str(seed_path) and report["dialect"] == "native"
    assert report["findings"], "the seed config must have findings"
    for finding in report["findings"]:
        assert {"id", "code", "severity", "message", "evidence", "fix"} <= set(finding)
        assert finding["severity"] in ("error", "warning", "info")
        assert all(
            isinstance(v, (int, float, str, bool, type(None))) for v in finding["evidence"].values()
        )
    ranks = [("info", "warning", "error").index(f["severity"]) for f in report["findings"]]
    assert ranks == sorted(ranks, reverse=True)  # worst first


def sarif_levels_and_refs(log: dict) -> None:
    """The parts of the SARIF 2.1.0 schema code-scanning services insist on."""
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert isinstance(driver["name"], str) and driver["name"]
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("none", "note", "warning", "error")
    for result in run["results"]:
        assert result["level"] in ("none", "note", "warning", "error")
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        if "ruleIndex" in result:
            assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        for location in result["locations"]:
            physical = location["physicalLocation"]
            assert isinstance(physical["artifactLocation"]["uri"], str)
            assert isinstance(physical["region"]["startLine"], int)
            assert physical["region"]["startLine"] >= 1


def test_sarif_structure_and_levels():
    docs = all_docs()
    log = json.loads(
        render_sarif(
            [INFO, ERROR, WARNING],
            docs=docs,
            artifact_uri="c.json",
            lines={"scheduler-steps-mismatch": 9},
        )
    )
    sarif_levels_and_refs(log)
    results = log["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error", "warning", "note"]
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 9
    assert results[0]["message"]["text"] == "told 7 steps Fix: unset it"
    assert results[0]["properties"]["evidence"] == {"told": 7, "ratio": 0.0625}
    assert "ruleIndex" not in results[2]  # DD999 is not a registered rule


def test_sarif_from_the_cli_points_at_the_patched_key(doctor, seed_path):
    result = doctor("check", seed_path, "--format", "sarif")
    log = json.loads(result.stdout)
    sarif_levels_and_refs(log)
    mismatch = next(
        r for r in log["runs"][0]["results"] if r["properties"]["id"] == "scheduler-steps-mismatch"
    )
    line = mismatch["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert '"num_training_steps"' in seed_path.read_text().splitlines()[line - 1]
    assert {r["name"] for r in log["runs"][0]["tool"]["driver"]["rules"]} >= {
        "scheduler-steps-mismatch",
        "lr-zero",
    }  # config rules and stream detectors


def test_text_groups_by_severity_with_evidence_and_summary():
    text = render_text([WARNING, INFO, ERROR], title="c.json", notes=["dialect: native"])
    assert text.index("Errors (1)") < text.index("Warnings (1)") < text.index("Info (1)")
    assert "told" in text and "0.0625" in text and "fix: unset it" in text
    assert text.rstrip().endswith("1 error, 1 warning, 1 info")
    assert "\x1b[" not in text


def test_text_with_colour_has_ansi_codes():
    assert "\x1b[" in render_text([ERROR], title="c.json", color=True)


def test_evidence_numbers_read_as_people_write_them():
    assert format_value(75000) == "75,000"
    assert format_value(0.95024) == "0.9502"
    assert format_value(2.85e-05) == "2.85e-05"
    assert format_value(3.0) == "3"
    assert format_value(None) == "none" and format_value(True) == "true"
    assert format_value(float("nan")) == "nan"


@pytest.mark.parametrize("color", [False, True])
def test_evidence_laid_out_as_lines_prints_what_the_table_prints(color):
    # render.text lays out rows that fit as lines; a table (room 0 forces it) is the reference.
    from distill_doctor.render.text import evidence_table, indented, make_console

    evidence = {
        "batch_size": 2,
        "ratio": 15.99,
        "[bold]marked": "[red]value[/red]",
        "wide": "漢字",
        "lines": "one\ntwo three",
        "gap": "x\n\ny",
        "empty": "",
        "flag": True,
    }
    finding = Finding("demo", "DD999", Severity.WARNING, "m", evidence)
    printed = []
    for room in (96, 0):
        console = make_console(color, 100)
        console.print(indented(evidence_table(finding, room)))
        printed.append(captured(console))
    assert printed[0] == printed[1] and "batch_size" in printed[0]
    # a user's text, not Rich markup
    assert "[bold]marked" in printed[0] and "[red]value[/red]" in printed[0]


def test_evidence_with_a_closing_tag_prints_as_written():
    finding = Finding("demo", "DD999", Severity.WARNING, "m", {"model": "a[/]b", "[/x]": 1})
    text = render_text([finding], title="c.json")
    assert "a[/]b" in text and "[/x]" in text
