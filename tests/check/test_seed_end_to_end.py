"""The seed's broken config end to end, the healthy config, exit codes, and the import budget
of the check path (no torch, no transformers)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from tests.check.conftest import HEALTHY, REPO


def findings_by_id(result) -> dict[str, dict]:
    return {f["id"]: f for f in json.loads(result.stdout)["findings"]}


def test_seed_reports_the_scheduler_mismatch_with_its_numbers(doctor, seed_path):
    found = findings_by_id(doctor("check", seed_path, "--format", "json"))
    evidence = found["scheduler-steps-mismatch"]["evidence"]
    planned = 3 * math.ceil(math.ceil(50_000 / 2) / 16)
    assert evidence["scheduler_steps"] == 75_000 and evidence["optimizer_steps"] == planned
    assert abs(evidence["ratio"] - 75_000 / planned) < 0.01
    # Told too many steps, linear decay after 1,000 warmup steps: training stops at this
    # fraction of the peak LR; the LR never reaches 0 (the seed write-up's claim is wrong).
    final_share = (75_000 - planned) / (75_000 - 1_000)
    assert abs(evidence["final_lr_share_of_peak"] - final_share) < 1e-3


def test_seed_reports_temperature_and_warmup(doctor, seed_path):
    found = findings_by_id(doctor("check", seed_path, "--format", "json"))
    assert found["kd-temperature-range"]["evidence"]["temperature"] == 3.0
    # 1,000 warmup steps are 21% of the 4,689 optimizer steps that really run (over 20%).
    assert abs(found["warmup-too-long"]["evidence"]["warmup_share"] - 1_000 / 4_689) < 1e-3


def test_seed_reports_full_vocab_kd_memory_on_a_p100(doctor, seed_path):
    result = doctor("check", seed_path, "--gpu", "P100", "--format", "json")
    finding = findings_by_id(result)["full-vocab-kd-memory"]
    evidence = finding["evidence"]
    assert evidence["vocab_size"] == 50_257  # the GPT-2 tokenizer, "~50k" in the write-up
    tokens = 2 * 384  # batch x max_length
    expected = tokens * 50_257 * evidence["bytes_per_token_and_class"] / 2**30
    assert abs(evidence["logits_gib"] - expected) < 1e-3
    assert finding["patch"]["kd_top_k"] == evidence["suggested_kd_top_k"]


def test_seed_fails_on_its_scheduler_alone(doctor, seed_path):
    # Told 16x too many steps, its LR ends at 95% of the peak: the configured decay never
    # happens (error, exit 1); everything else in the seed config is a warning.
    result = doctor("check", seed_path, "--gpu", "P100", "--format", "json")
    assert result.exit_code == 1
    errors = [f["id"] for f in json.loads(result.stdout)["findings"] if f["severity"] == "error"]
    assert errors == ["scheduler-steps-mismatch"]


def test_healthy_config_checks_clean_on_a_p100(doctor):
    result = doctor("check", HEALTHY, "--gpu", "P100", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["findings"] == []


def test_exit_code_1_on_an_error_finding(doctor, write_config, seed):
    data = {**seed, "num_training_steps": 500}  # told too few: LR at 0 for most of training
    result = doctor("check", write_config(data), "--format", "json")
    assert result.exit_code == 1
    assert findings_by_id(result)["scheduler-steps-mismatch"]["severity"] == "error"


def test_check_path_imports_neither_torch_nor_transformers():
    code = (
        "import sys\n"
        "from distill_doctor.cli import app\n"
        "try:\n"
        "    app(['check', 'configs/seed_broken.json', '--gpu', 'P100', '--format', 'sarif'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print('LOADED:' + ','.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert '"version": "2.1.0"' in out.stdout  # the check really ran
    assert out.stdout.strip().endswith("LOADED:")
