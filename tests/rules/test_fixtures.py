"""Every rule against its own fixtures: fail*.json triggers it, pass*.json does not, and the
fail case's patch is the one in fix.json and makes the rule go quiet."""

from __future__ import annotations

import json

import pytest

from distill_doctor.registry import lookup
from distill_doctor.rules import RULES, run_rules
from tests.rules.conftest import FIXTURES, fixture_context, fixture_data, fixture_gpu, make_context

RULE_IDS = [rule.DOC.id for rule in RULES]
CASES = sorted(
    (rule_id, path.stem)
    for rule_id in RULE_IDS
    for path in (FIXTURES / rule_id).glob("*.json")
    if path.stem.startswith(("fail", "pass"))
)


def ids_of(findings):
    return [f.id for f in findings]


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_every_rule_has_fail_and_pass_fixtures_and_is_registered(rule_id):
    assert (FIXTURES / rule_id / "fail.json").exists()
    assert (FIXTURES / rule_id / "pass.json").exists()
    assert lookup(rule_id).kind == "config"


@pytest.mark.parametrize(("rule_id", "case"), CASES)
def test_fixture_case(rule_id, case):
    rule = next(r for r in RULES if r.DOC.id == rule_id)
    findings = rule.check(fixture_context(rule_id, case))
    if case.startswith("fail"):
        assert ids_of(findings) == [rule_id]
        assert findings[0].code == rule.DOC.code and findings[0].message
    else:
        assert findings == []


@pytest.mark.parametrize("rule_id", [r for r in RULE_IDS if (FIXTURES / r / "fix.json").exists()])
def test_fix_patch_is_expected_and_silences_the_rule(rule_id):
    rule = next(r for r in RULES if r.DOC.id == rule_id)
    data = fixture_data(rule_id, "fail")
    gpu = fixture_gpu(rule_id, "fail")
    [finding] = rule.check(make_context(data, gpu))
    expected = json.loads((FIXTURES / rule_id / "fix.json").read_text())
    assert finding.patch == expected
    assert rule.DOC.fix_available != "never"
    assert rule.check(make_context({**data, **finding.patch}, gpu)) == []


def test_run_rules_sorts_worst_first():
    findings = run_rules(fixture_context("scheduler-steps-mismatch", "fail_too_few"))
    ranks = [f.severity.rank for f in findings]
    assert ranks == sorted(ranks, reverse=True)
    assert "scheduler-steps-mismatch" in ids_of(findings)
