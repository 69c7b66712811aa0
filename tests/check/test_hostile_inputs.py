"""Hostile and careless input to `doctor check` (issue 9): a one-paragraph error and exit 2,
never a traceback, a hang, or a lost file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distill_doctor.config import reader

REPO = Path(__file__).resolve().parents[2]
HF = {"output_dir": "out", "per_device_train_batch_size": 2, "num_train_epochs": 1}


def assert_clean_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, text


def run_doctor(*args: str, stdin: bytes | None = None, timeout: float = 30):
    """`doctor` as a user runs it: a subprocess, killed if it hangs; stderr's lines joined."""
    done = subprocess.run(
        [sys.executable, "-m", "distill_doctor", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=REPO,
    )
    done.stderr = " ".join(done.stderr.decode(errors="replace").split())
    return done


# --- --fix --output: the user's file is precious ----------------------------------------------


def test_output_hard_link_of_the_input_is_refused(doctor, write_config, seed):
    config = write_config(seed)
    before = config.read_bytes()
    link = config.parent / "hl.json"
    os.link(config, link)
    assert_clean_error(doctor("check", config, "--fix", "--output", link), "same file on disk")
    assert config.read_bytes() == before


def test_output_symlink_to_the_input_is_refused(doctor, write_config, seed):
    config = write_config(seed)
    link = config.parent / "sl.json"
    link.symlink_to(config)
    assert_clean_error(doctor("check", config, "--fix", "--output", link), "same file on disk")


@pytest.mark.parametrize(
    "output,needle",
    [("/dev/full", "not a regular file"), ("/sys/x.json", "--output /sys/x.json")],
)
def test_output_where_nothing_can_be_written(doctor, write_config, seed, output, needle):
    if not Path(output).parent.exists():
        pytest.skip(f"{output}: no such place on this machine")
    assert_clean_error(doctor("check", write_config(seed), "--fix", "--output", output), needle)


def test_output_in_a_read_only_place_leaves_no_temporary_file(
    doctor, write_config, seed, monkeypatch
):
    config = write_config(seed)
    out_dir = config.parent / "ro"
    out_dir.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("os.replace", refuse)  # root ignores chmod: refuse the rename itself
    result = doctor("check", config, "--fix", "--output", out_dir / "new.json")
    assert_clean_error(result, "cannot write there (Permission denied)")
    assert list(out_dir.iterdir()) == []


def test_fixed_file_is_written_whole(doctor, write_config, seed):
    output = write_config(seed).parent / "fixed.json"
    result = doctor("check", write_config(seed), "--fix", "--output", output)
    assert result.exit_code in (0, 1) and json.loads(output.read_text())
    assert [p.name for p in output.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_fix_refuses_a_yaml_file(doctor, tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text("output_dir: out\nper_device_train_batch_size: 2\nwarmup_steps: 0.1\n")
    result = doctor("check", config, "--fix", "--output", tmp_path / "new.json")
    assert_clean_error(result, "--fix rewrites native and Hugging Face/TRL JSON configs")


# --- what is read: regular files only, capped ---------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused_at_once(device):
    done = run_doctor("check", device)
    assert done.returncode == 2 and "not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    done = run_doctor("check", str(fifo))
    assert done.returncode == 2 and "not a regular file" in done.stderr


def test_stdin_is_read_with_a_dash():
    done = run_doctor("check", "-", "--format", "json", stdin=json.dumps(HF).encode())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dialect"] == "hf"


def test_stdin_is_capped():
    done = run_doctor("check", "-", stdin=b" " * (reader.MAX_CONFIG_BYTES + 10))
    assert done.returncode == 2 and "too large for a config file" in done.stderr


def test_a_file_in_a_folder_that_cannot_be_entered(doctor, tmp_path, monkeypatch):
    config = tmp_path / "locked" / "config.json"

    def locked(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(reader.os, "stat", locked)  # as root, chmod 000 would not stop us
    assert_clean_error(doctor("check", config), "permission denied")


# --- what the file holds -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested deeper than"),
        ('{"output_dir": "o", "seed": ' + "9" * 5000 + "}", "cannot be read"),
    ],
    ids=["deep-array", "deep-object", "5000-digit-int"],
)
def test_json_that_cannot_be_a_config(doctor, write_config, text, needle):
    assert_clean_error(doctor("check", write_config(text)), needle)


@pytest.mark.parametrize(
    "key,value,needle",
    [
        ("epochs", float("inf"), "finite number"),
        ("learning_rate", float("inf"), "finite number"),
        ("temperature", 1e300, "less than or equal to 1000"),
        ("epochs", 1e300, "less than or equal to 10000"),
        ("kd_top_k", 10**18, "less than or equal to 10000000"),
        ("train_samples", 10**400, "less than or equal to"),
    ],
)
def test_absurd_values_are_refused(doctor, write_config, seed, key, value, needle):
    result = doctor("check", write_config(json.dumps({**seed, key: value})))
    assert_clean_error(result, key, needle)


def test_duplicate_json_keys_are_a_warning(doctor, write_config):
    text = '{"output_dir": "o", "learning_rate": 1e-4, "learning_rate": 5e-5}'
    result = doctor("check", write_config(text))
    output = " ".join(result.output.split())
    assert result.exit_code == 0 and "'learning_rate' is set twice (0.0001, then 5e-05)" in output


def test_many_unknown_keys_are_counted_not_listed(doctor, write_config):
    data = {**HF, **{f"unknown_key_{i}": i for i in range(200_000)}}
    result = doctor("check", write_config(data))
    assert result.exit_code == 0
    assert "200,000 key(s) that no TrainingArguments" in " ".join(result.output.split())
    assert len(result.output) < 5_000


def test_a_native_config_with_many_unknown_keys_names_a_few_and_counts_the_rest(
    doctor, write_config
):
    data = {"batch_size": 8, **{f"k{i}": i for i in range(50_000)}}
    result = doctor("check", write_config(data))
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "50,000 unknown keys" in output
    assert "k19: unknown key" in output and "k20: unknown key" not in output
    assert "49,980 more, not listed" in output and len(result.output) < 5_000


def test_a_long_list_of_invalid_values_is_cut_with_a_count(doctor, write_config):
    # 19 unknown keys (under the shortcut's 20) and two wrong types: 21 problems.
    data = {"batch_size": "eight", **{f"k{i}": i for i in range(19)}, "epochs": "x"}
    result = doctor("check", write_config(data))
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "21 invalid config value(s)" in output
    assert "1 more, not listed" in output
    assert output.count("unknown key") + output.count("(got ") == 20


# --- model facts from the file system ------------------------------------------------------


def test_model_config_json_with_a_string_where_a_number_goes(doctor, write_config, seed, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    arch = {
        "model_type": "llama",
        "vocab_size": 1000,
        "max_position_embeddings": 512,
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "intermediate_size": "big",
    }
    (model / "config.json").write_text(json.dumps(arch))
    result = doctor("check", write_config({**seed, "student_model": str(model)}))
    assert_clean_error(result, "intermediate_size", "'big'")


@pytest.mark.parametrize(
    "name,needle",
    [("x" * 5000, "model name of 5,000 characters"), ("~nosuchuser/x", "no user 'nosuchuser'")],
    ids=["5000-chars", "no-such-user"],
)
def test_model_names_that_no_file_system_takes(doctor, write_config, seed, name, needle):
    assert_clean_error(doctor("check", write_config({**seed, "teacher_model": name})), needle)


# --- YAML ----------------------------------------------------------------------------------


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("a: " + "[" * 100_000 + "]" * 100_000, "nested deeper than"),
        ("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 400)), "nested deeper than"),
        (ALIAS_BOMB, "alias bomb"),
        ("a: &a [*a]\n", "nested deeper than"),  # a recursive alias
        ("a: !!binary aGVsbG8=\n", "binary data"),
        ("a: !!python/object:os.system {}\n", "invalid YAML"),
        ("key: [unclosed\n", "invalid YAML at line"),
        ("seed: " + "9" * 5000 + "\n", "cannot be read"),
    ],
    ids=[
        "deep-flow",
        "deep-block",
        "alias-bomb",
        "recursive-alias",
        "binary",
        "python-tag",
        "syntax",
        "huge-int",
    ],
)
def test_yaml_that_cannot_be_a_config(doctor, tmp_path, text, needle):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    assert_clean_error(doctor("check", config), needle)


def test_binary_garbage_named_yaml(doctor, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_bytes(bytes(range(256)) * 40)
    assert_clean_error(doctor("check", config), "binary file")


def test_duplicate_yaml_keys_are_a_warning_with_the_line(doctor, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("output_dir: o\nlearning_rate: 1e-4\nlearning_rate: 5e-5\n")
    output = " ".join(doctor("check", config).output.split())
    assert "line 3: 'learning_rate' is set twice" in output


def test_stdin_reads_yaml_flow_style_and_keeps_the_json_error_when_neither_reads():
    done = run_doctor("check", "-", "--format", "json", stdin=b"{output_dir: o, warmup_ratio: 0.5}")
    assert done.returncode == 0 and "warmup-too-long" in done.stdout.decode()
    done = run_doctor("check", "-", stdin=b'{"output_dir": "o", ')
    assert done.returncode == 2 and "invalid JSON at line 1, column 21" in done.stderr


def test_a_path_with_markup_and_emoji_codes_is_quoted_as_it_is(doctor, tmp_path):
    # Rich markup in an error message once raised MarkupError ("[/]") or ate "[bold]".
    path = tmp_path / "run_[/]_[bold]x_:fire:.json"
    result = doctor("check", str(path))
    output = "".join(result.output.split())
    assert result.exit_code == 2 and "run_[/]_[bold]x_:fire:.json" in output
