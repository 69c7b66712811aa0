"""`--fix --output`: only the keys a rule fixes change, the dialect stays, the result checks
with no errors, and the input is never overwritten."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from distill_doctor.config.fix import warmup_as_ratio
from tests.check.conftest import FIXTURES

HF_SEED = FIXTURES / "hf_seed.json"


def changed_keys(before: dict, after: dict) -> dict:
    keys = set(before) | set(after)
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


def fix_and_recheck(doctor, config, output, *extra):
    fixed = doctor("check", config, "--fix", "--output", output, "--format", "json", *extra)
    recheck = doctor("check", output, "--format", "json", *extra)
    return json.loads(fixed.stdout), fixed.exit_code, json.loads(recheck.stdout), recheck.exit_code


def test_seed_fix_round_trip(doctor, seed_path, tmp_path):
    output = tmp_path / "fixed.json"
    before_text = seed_path.read_text()
    report, code, recheck, recheck_code = fix_and_recheck(
        doctor, seed_path, output, "--gpu", "P100"
    )
    assert seed_path.read_text() == before_text  # the input is untouched
    before, after = json.loads(before_text), json.loads(output.read_text())
    patched = {k for f in report["findings"] for k in (f.get("patch") or {})}
    changes = changed_keys(before, after)
    assert patched and set(changes) == patched  # exactly the keys a rule fixes
    assert changes["num_training_steps"] == (75_000, None)
    assert recheck_code == 0 and code == 0
    assert not [f for f in recheck["findings"] if f["severity"] == "error"]
    assert report["fixed"]["summary"] == recheck["summary"]


def test_hf_fix_keeps_the_dialect_and_the_ratio(doctor, tmp_path):
    output = tmp_path / "hf_fixed.json"
    report, _, recheck, recheck_code = fix_and_recheck(
        doctor, HF_SEED, output, "--train-samples", "50000"
    )
    warmup = next(f for f in report["findings"] if f["id"] == "warmup-too-long")
    before, after = json.loads(HF_SEED.read_text()), json.loads(output.read_text())
    assert set(changed_keys(before, after)) == {"warmup_ratio"}
    ratio = after["warmup_ratio"]
    assert 0 < ratio < before["warmup_ratio"]
    # TrainingArguments takes ceil(steps * ratio): the ratio must give the patched steps back.
    planned = warmup["evidence"]["optimizer_steps"]
    assert math.ceil(planned * ratio) == warmup["patch"]["warmup_steps"]
    assert recheck_code == 0
    assert "warmup-too-long" not in {f["id"] for f in recheck["findings"]}


def test_hf_fix_adds_a_missing_key_under_its_hf_name(doctor, write_config, tmp_path):
    data = {
        "output_dir": "o",
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 16,
        "num_train_epochs": 3,
        "warmup_steps": 2000,
    }
    output = tmp_path / "out.json"
    doctor("check", write_config(data), "--train-samples", "50000", "--fix", "--output", output)
    after = json.loads(output.read_text())
    assert set(changed_keys(data, after)) == {"warmup_steps"}
    assert after["warmup_steps"] < 2000


def test_output_equal_to_input_is_refused(doctor, write_config, seed):
    path = write_config(seed)
    result = doctor("check", path, "--fix", "--output", path)
    assert result.exit_code == 2 and "never overwrites" in " ".join(result.stderr.split())
    assert json.loads(path.read_text()) == seed


def test_output_in_missing_folder_is_an_input_error(doctor, seed_path, tmp_path):
    result = doctor("check", seed_path, "--fix", "--output", tmp_path / "no" / "x.json")
    assert result.exit_code == 2 and "does not exist" in " ".join(result.stderr.split())


def test_text_report_lists_the_changes(doctor, seed_path, tmp_path):
    output = tmp_path / "fixed.json"
    result = doctor("check", seed_path, "--fix", "--output", output)
    assert f"Fixed config written to {output}" in " ".join(result.stdout.split())
    assert "num_training_steps: 75000 -> null" in result.stdout
    assert "Re-check of" in result.stdout


def test_fix_edits_a_key_inside_its_section(doctor, write_config, seed, tmp_path):
    data = {k: v for k, v in seed.items() if k != "num_training_steps"}
    data["schedule"] = {"num_training_steps": seed["num_training_steps"]}
    output = tmp_path / "fixed.json"
    doctor("check", write_config(data), "--fix", "--output", output)
    after = json.loads(output.read_text())
    assert after["schedule"] == {"num_training_steps": None}
    assert "num_training_steps" not in after  # not duplicated at the top level


@given(planned=st.integers(1, 2_000_000), data=st.data())
def test_warmup_ratio_turns_back_into_the_same_steps(planned, data):
    steps = data.draw(st.integers(0, planned))
    ratio = warmup_as_ratio(steps, planned)
    assert math.ceil(planned * ratio) == steps  # what TrainingArguments.get_warmup_steps does
    assert len(repr(ratio)) <= 12  # a ratio a person can read in the file


def test_warmup_ratio_survives_float_rounding():
    # 65,204 / 80,000 is exactly 0.81505, yet 80,000 x 0.81505 is 65,204.00000000001 in floats.
    assert math.ceil(80_000 * warmup_as_ratio(65_204, 80_000)) == 65_204
