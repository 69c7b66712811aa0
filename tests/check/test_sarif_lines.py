"""SARIF anchors every config finding at the line of the key it is about, so a code-scanning
UI shows it beside `"temperature": 3.0`, not on line 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill_doctor.registry import all_docs

FIXTURES = Path(__file__).parents[1] / "rules" / "fixtures"
CONFIG_RULES = [doc for doc in all_docs() if doc.kind == "config"]


def test_every_config_rule_names_its_keys():
    assert all(doc.keys for doc in CONFIG_RULES)


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*/fail*.json")), ids=str)
def test_a_finding_points_at_a_line_holding_one_of_its_rules_keys(doctor, fixture):
    result = doctor("check", fixture, "--gpu", "T4", "--format", "sarif")
    assert result.exit_code in (0, 1), result.output
    text = fixture.read_text().splitlines()
    keys = {doc.code: doc.keys for doc in CONFIG_RULES}
    for found in json.loads(result.stdout)["runs"][0]["results"]:
        line = found["locations"][0]["physicalLocation"]["region"]["startLine"]
        named = [k for k in keys[found["ruleId"]] if f'"{k}"' in "\n".join(text)]
        if named:  # the file sets a key the finding is about: that line
            assert any(f'"{k}"' in text[line - 1] for k in named), (found, line)
        else:  # a rule about defaults the file leaves alone: the file's first line
            assert line == 1


def test_the_seed_temperature_finding_points_at_temperature(doctor):
    config = Path(__file__).parents[2] / "configs" / "seed_broken.json"
    log = json.loads(doctor("check", config, "--gpu", "P100", "--format", "sarif").stdout)
    [found] = [r for r in log["runs"][0]["results"] if r["ruleId"] == "DD103"]
    line = found["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert config.read_text().splitlines()[line - 1].strip() == '"temperature": 3.0,'
