"""Every bad input: exit code 2 and a one-paragraph message naming the problem, no traceback."""

from __future__ import annotations

import pytest


def assert_input_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error:")
    flat = " ".join(result.stderr.split())  # Rich wraps long messages
    for needle in needles:
        assert needle in flat, flat


def test_missing_file(doctor, tmp_path):
    assert_input_error(doctor("check", tmp_path / "nope.json"), "nope.json: no such file")


def test_directory_instead_of_file(doctor, tmp_path):
    assert_input_error(doctor("check", tmp_path), "is a directory")


def test_empty_file(doctor, write_config):
    assert_input_error(doctor("check", write_config("  \n")), "the file is empty")


def test_invalid_json_names_line_and_column(doctor, write_config):
    path = write_config('{\n  "batch_size": 2,\n  "epochs": 3,,\n}')
    assert_input_error(doctor("check", path), "invalid JSON at line 3, column 15")


def test_top_level_array(doctor, write_config):
    assert_input_error(doctor("check", write_config("[1, 2]")), "top level is a JSON array")


def test_binary_file(doctor, tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(bytes(range(256)) * 4)
    assert_input_error(doctor("check", path), "binary file")


def test_binary_file_that_decodes_as_utf8(doctor, tmp_path):
    path = tmp_path / "zeros.bin"
    path.write_bytes(b"\x00" * 64)
    assert_input_error(doctor("check", path), "NUL bytes")


def test_wrong_type_names_the_key(doctor, write_config, seed):
    data = {**seed, "batch_size": "two"}
    assert_input_error(doctor("check", write_config(data)), "batch_size", "valid integer")


def test_quoted_number_is_not_coerced(doctor, write_config, seed):
    data = {**seed, "epochs": "3"}
    assert_input_error(doctor("check", write_config(data)), "epochs", '(got "3")')


def test_unknown_key_suggests_the_right_one(doctor, write_config, seed):
    data = {**seed, "gradient_acumulation_steps": 4}
    assert_input_error(
        doctor("check", write_config(data)),
        "gradient_acumulation_steps: unknown key (did you mean 'gradient_accumulation_steps'?)",
    )


@pytest.mark.parametrize(
    "other_name,ours",
    [("lr", "learning_rate"), ("gradient_clip_norm", "max_grad_norm"), ("num_epochs", "epochs")],
)
def test_names_other_scripts_use_suggest_ours(doctor, write_config, seed, other_name, ours):
    # The seed write-up itself asks for `gradient_clip_norm: 0.5`; spelling distance alone
    # cannot connect "lr" with learning_rate.
    data = {**{k: v for k, v in seed.items() if k != ours}, other_name: 1e-4}
    assert_input_error(
        doctor("check", write_config(data)), f"{other_name}: unknown key (did you mean '{ours}'?)"
    )


@pytest.mark.parametrize(
    "key,value",
    [
        ("batch_size", 0),
        ("gradient_accumulation_steps", -1),
        ("train_samples", 0),
        ("epochs", 0),
        ("eval_steps", -5),
        ("warmup_steps", -1),
    ],
)
def test_zero_or_negative_counts(doctor, write_config, seed, key, value):
    data = {**seed, key: value}
    assert_input_error(doctor("check", write_config(data)), key, f"(got {value})")


def test_every_invalid_key_is_reported_at_once(doctor, write_config, seed):
    data = {**seed, "batch_size": 0, "temperature": "hot", "epoch": 3}
    result = doctor("check", write_config(data))
    assert_input_error(
        result, "3 invalid config value(s)", "batch_size", "temperature", "did you mean 'epochs'"
    )


def test_dialect_that_cannot_be_told(doctor, write_config):
    result = doctor("check", write_config({"learning_rate": 1e-4, "fp16": True}))
    assert_input_error(
        result,
        "cannot tell the config dialect",
        "batch_size",
        "per_device_train_batch_size",
        "--dialect",
    )


def test_mixed_dialects_name_the_clashing_keys(doctor, write_config):
    data = {"batch_size": 2, "per_device_train_batch_size": 2}
    assert_input_error(
        doctor("check", write_config(data)),
        "native keys (batch_size)",
        "Hugging Face keys (per_device_train_batch_size)",
    )


def test_hf_unknown_key_is_a_note_with_a_suggestion(doctor, write_config):
    """The dialect is clear, so an unknown key is reported, not a refusal (issue 13)."""
    data = {"per_device_train_batch_size": 2, "num_train_epoch": 3}
    result = doctor("check", write_config(data), "--dialect", "hf")
    output = " ".join(result.output.split())
    assert result.exit_code == 0, output
    assert "'num_train_epoch' (did you mean 'num_train_epochs'?)" in output
    assert "HfArgumentParser raises on unknown keys" in output


def test_hf_wrong_type_uses_the_file_key_name(doctor, write_config):
    data = {"per_device_train_batch_size": "2", "output_dir": "out"}
    result = doctor("check", write_config(data))
    assert_input_error(result, "per_device_train_batch_size", "valid integer")


def test_hf_unsupported_scheduler_is_rejected_clearly(doctor, write_config):
    data = {"output_dir": "out", "lr_scheduler_type": "reduce_lr_on_plateau"}
    assert_input_error(
        doctor("check", write_config(data)),
        "reduce_lr_on_plateau",
        "not a schedule doctor check can model",
    )


def test_unknown_gpu_suggests(doctor, seed_path):
    assert_input_error(doctor("check", seed_path, "--gpu", "P10O"), "unknown GPU")


def test_zero_train_samples_flag_is_a_usage_error(doctor, seed_path):
    result = doctor("check", seed_path, "--train-samples", "0")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_fix_without_output_is_refused(doctor, seed_path):
    assert_input_error(doctor("check", seed_path, "--fix"), "--fix and --output go together")
