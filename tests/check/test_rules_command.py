"""`doctor rules` and `doctor explain` read the one registry."""

from __future__ import annotations

import json

from distill_doctor.registry import all_docs


def test_rules_json_lists_every_rule_and_detector(doctor):
    result = doctor("rules", "--format", "json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)["rules"]
    assert [r["id"] for r in listed] == [d.id for d in all_docs()]
    assert {r["kind"] for r in listed} == {"config", "stream", "live"}


def test_rules_kind_filter(doctor):
    result = doctor("rules", "--format", "json", "--kind", "config")
    kinds = {r["kind"] for r in json.loads(result.stdout)["rules"]}
    assert kinds == {"config"}


def test_rules_text_table(doctor):
    result = doctor("rules")
    assert result.exit_code == 0
    for doc in all_docs():
        assert doc.code in result.stdout and doc.id in result.stdout


def test_explain_by_name_and_by_code_agree(doctor):
    by_name = doctor("explain", "scheduler-steps-mismatch")
    by_code = doctor("explain", "dd101")
    assert by_name.exit_code == 0 and by_name.stdout == by_code.stdout
    for heading in ("What it detects", "Why it matters", "Fix", "Fix available with --fix"):
        assert heading in by_name.stdout


def test_explain_json(doctor):
    doc = json.loads(doctor("explain", "DD101", "--format", "json").stdout)
    assert doc["id"] == "scheduler-steps-mismatch" and doc["fix_available"] in (
        "never",
        "sometimes",
        "always",
    )


def test_explain_unknown_suggests(doctor):
    result = doctor("explain", "scheduler-step-mismatch")
    assert result.exit_code == 2
    assert "scheduler-steps-mismatch" in result.stderr and "Traceback" not in result.output


def test_rules_text_fits_an_80_column_terminal(doctor, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    lines = doctor("rules").stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("DD101  scheduler-steps-mismatch") for line in lines)
