"""`doctor train` end to end: the tiny pair, the shipped demo, overrides, errors, SIGINT."""

import json
import signal
import subprocess
import sys
import time

import pytest
from train_helpers import write_corpus
from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.trainer.checkpoint import complete_checkpoints
from distill_doctor.trainer.demo import demo_root


def tiny_args(pair, data, run_dir, *extra):
    return [
        "train", "--teacher", str(pair.teacher), "--student", str(pair.student),
        "--data", str(data), "--set", "max_length=16", "--set", "batch_size=4",
        "--set", "eval_max_batches=2", "--run-dir", str(run_dir), *extra,
    ]  # fmt: skip


def events_of(run_dir):
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_train_tiny_pair_writes_the_run_directory(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt")
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        app, tiny_args(tiny_pair, data, run_dir, "--max-steps", "3", "--set", "warmup_steps=1")
    )
    assert result.exit_code == 0, result.output
    assert "[Scheduler] Optimizer steps: 3 · warmup 1 (33.3%)" in result.output
    assert "Eval CE (held-out, nats/token): teacher" in result.output
    assert json.loads((run_dir / "config.json").read_text())["max_steps"] == 3
    assert [p.name for p in complete_checkpoints(run_dir / "checkpoints")] == ["step-000003"]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "student/model.safetensors").is_file()
    assert (run_dir / "student/tokenizer.json").is_file()
    events = events_of(run_dir)
    assert events[0]["type"] == "run"
    # logging_steps 10: step 1 and the run's last step; evals before training and at the end
    assert [e["step"] for e in events if e["type"] == "metrics"] == [1, 3]
    assert [e["step"] for e in events if e["type"] == "eval"] == [0, 3]


def test_bundled_demo_runs_offline(tmp_path):
    run_dir = tmp_path / "demo"
    args = ["train", "--max-steps", "3", "--set", "eval_max_batches=2", "--run-dir", str(run_dir)]
    # 3 steps of the demo's 40-step warmup: the pre-flight's warmup-too-long error, accepted
    result = CliRunner().invoke(app, [*args, "--allow-errors"])
    assert result.exit_code == 0, result.output
    assert "[Check] error DD102 warmup-too-long" in result.output
    run_event = events_of(run_dir)[0]
    assert run_event["config"]["teacher_model"] == "demo:teacher"
    evals = [e for e in events_of(run_dir) if e["type"] == "eval"]
    # the shipped teacher is really better than the untrained student
    assert evals[0]["teacher_ce"] < evals[0]["eval_ce"] - 1.0


def test_demo_files_stay_small():
    sizes = {p.name: p.stat().st_size for p in demo_root().rglob("*") if p.is_file()}
    assert max(sizes.values()) < 5_000_000, sizes
    assert sum(sizes.values()) < 10_000_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "learning_rat=1e-4"], "did you mean 'learning_rate'"),
        (["--set", "learning_rate"], "expected key=value"),
        (["--set", "batch_size=0"], "batch_size"),
        (["--data", "nope.txt"], "no such data file"),
    ],
)
def test_bad_input_exits_2_with_a_message(tiny_pair, tmp_path, args, message):
    data = write_corpus(tmp_path / "d.txt")
    result = CliRunner().invoke(app, [*tiny_args(tiny_pair, data, tmp_path / "run"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_existing_run_dir_and_missing_checkpoint_exit_2(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt")
    (tmp_path / "run").mkdir()
    (tmp_path / "run/config.json").write_text("{}")
    taken = CliRunner().invoke(app, tiny_args(tiny_pair, data, tmp_path / "run"))
    assert taken.exit_code == 2 and "--resume" in taken.output
    (tmp_path / "run/config.json").write_text(json.dumps({"data": str(data)}))
    nothing = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run")])
    assert nothing.exit_code == 2 and "no complete checkpoint" in " ".join(nothing.output.split())


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_finishes_the_step_checkpoints_and_says_how_to_resume(
    tiny_pair, tmp_path, sig, code
):
    data = write_corpus(tmp_path / "d.txt", documents=400)
    run_dir = tmp_path / "run"
    args = tiny_args(tiny_pair, data, run_dir, "--set", "epochs=50", "--set", "logging_steps=1")
    process = subprocess.Popen(
        [sys.executable, "-m", "distill_doctor", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        (run_dir / "events.jsonl").exists()
        and any(e["type"] == "metrics" and e["step"] >= 2 for e in events_of(run_dir))
    ):
        time.sleep(0.2)
    process.send_signal(sig)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == code, output
    flat = " ".join(output.split())
    assert f"({sig.name}); checkpoint saved" in flat
    assert f"Resume with: doctor train --resume {run_dir}" in flat
    stopped_at = max(e["step"] for e in events_of(run_dir) if e["type"] == "metrics")
    assert complete_checkpoints(run_dir / "checkpoints")[-1].name == f"step-{stopped_at:06d}"

    resumed = CliRunner().invoke(
        app, ["train", "--resume", str(run_dir), "--max-steps", str(stopped_at + 2)]
    )
    assert resumed.exit_code == 0, resumed.output
    steps = [e["step"] for e in events_of(run_dir) if e["type"] == "metrics"]
    assert steps[-2:] == [stopped_at + 1, stopped_at + 2]


def test_vocab_mismatch_stops_before_training(tiny_pair, make_tiny_model, tmp_path):
    data = write_corpus(tmp_path / "d.txt")
    small = make_tiny_model("small-vocab", vocab_size=12)  # the tokenizer has 19 tokens
    args = tiny_args(tiny_pair, data, tmp_path / "run", "--teacher", str(small))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "vocabulary mismatch" in " ".join(result.output.split())
    assert not (tmp_path / "run/checkpoints").exists()


def test_a_sectioned_config_trains_and_flags_override_inside_sections(tiny_pair, tmp_path):
    # `doctor check` reads keys grouped in sections; `doctor train` reads the same file, and a
    # flag replaces a key wherever the file set it.
    config = tmp_path / "sectioned.json"
    config.write_text(json.dumps({
        "models": {
            "teacher_model": str(tiny_pair.teacher),
            "student_model": str(tiny_pair.student),
        },
        "data": str(write_corpus(tmp_path / "d.txt")),
        "optim": {"batch_size": 4, "max_steps": 5, "warmup_steps": 1},
        "eval": {"eval_max_batches": 2},
        "max_length": 16,
    }))  # fmt: skip
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", str(config), "--max-steps", "2", "--run-dir", str(run_dir)]
    )
    assert result.exit_code == 0, result.output
    resolved = json.loads((run_dir / "config.json").read_text())
    assert resolved["max_steps"] == 2 and resolved["batch_size"] == 4


def test_a_preflight_error_trains_then_exits_1_unless_allowed(tiny_pair, tmp_path):
    # warmup 10 of a 3-step run: warmup-too-long is an error (the LR never reaches its peak).
    data = write_corpus(tmp_path / "d.txt")
    args = ["--max-steps", "3", "--set", "warmup_steps=10"]
    flagged = CliRunner().invoke(app, tiny_args(tiny_pair, data, tmp_path / "a", *args))
    assert flagged.exit_code == 1, flagged.output
    flat = " ".join(flagged.output.split())
    assert "[Check] error DD102 warmup-too-long" in flat
    assert "Exit 1: the pre-flight found 1 error(s) in the config (warmup-too-long" in flat
    assert (tmp_path / "a/student/model.safetensors").is_file()  # it trained all the same
    allowed = CliRunner().invoke(
        app, tiny_args(tiny_pair, data, tmp_path / "b", *args, "--allow-errors")
    )
    assert allowed.exit_code == 0, allowed.output
    assert "Exit 1" not in allowed.output


def test_config_is_accepted_as_an_option_too(tiny_pair, tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({
        "teacher_model": str(tiny_pair.teacher), "student_model": str(tiny_pair.student),
        "data": str(write_corpus(tmp_path / "d.txt")), "batch_size": 4, "max_length": 16,
        "max_steps": 2, "warmup_steps": 1, "eval_max_batches": 2,
    }))  # fmt: skip
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert f"Config: {config}" in " ".join(result.output.split())
    both = CliRunner().invoke(app, ["train", str(config), "--config", str(tmp_path / "other.json")])
    assert both.exit_code == 2 and "give one" in " ".join(both.output.split())
