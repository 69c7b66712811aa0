"""The package's shared contracts: Finding, the registry, the import budget of the linters."""

import json
import subprocess
import sys

import pytest

from distill_doctor.errors import InputError
from distill_doctor.findings import Finding, Severity, has_errors, sort_findings
from distill_doctor.registry import all_docs, lookup


def test_finding_round_trips_through_json():
    finding = Finding(
        id="lr-zero",
        code="DD201",
        severity=Severity.ERROR,
        message="LR is 0",
        evidence={"step": 293, "share_left": 0.94},
        fix="step the scheduler per optimizer step",
        step=293,
    )
    data = json.loads(json.dumps(finding.to_dict()))
    assert data["severity"] == "error" and data["step"] == 293
    assert Finding.from_dict(data) == finding


def test_sort_puts_errors_first_and_has_errors():
    info = Finding("a", "X1", Severity.INFO, "i")
    err = Finding("b", "X2", Severity.ERROR, "e", step=5)
    warn = Finding("c", "X3", Severity.WARNING, "w")
    assert [f.id for f in sort_findings([info, warn, err])] == ["b", "c", "a"]
    assert has_errors([info, err]) and not has_errors([info, warn])


def test_registry_ids_and_codes_are_unique_and_documented():
    docs = all_docs()
    assert len({d.id for d in docs}) == len(docs)
    assert len({d.code for d in docs}) == len(docs)
    for doc in docs:
        assert doc.id == doc.id.lower() and " " not in doc.id
        assert doc.summary and doc.why and doc.fix


def test_lookup_unknown_name_suggests():
    with pytest.raises(InputError):
        lookup("no-such-rule-anywhere")


@pytest.mark.parametrize("module", ["distill_doctor.cli"])
def test_linter_path_does_not_import_torch(module):
    code = (
        f"import sys, {module}; import distill_doctor.registry as r; r.all_docs(); "
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
