"""A run directory under careless and hostile use: resumes that change what cannot change,
truncated checkpoints, two trainers at once, a full disk, a run that died before its first
checkpoint, impossible places and devices. Each ends in exit 0 or a one-paragraph exit 2,
with the run's files as they were."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from conftest import build_tokenizer, save_tiny_model
from safetensors import SafetensorError
from train_helpers import write_corpus
from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.trainer import checkpoint as ckpt
from distill_doctor.trainer.run_dir import LOCK_FILE, run_lock


def flat(output: str) -> str:
    return " ".join(output.split())


def train(*args: str):
    result = CliRunner().invoke(app, ["train", *args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 2-step run of the tiny pair with checkpoints at steps 1 and 2."""
    root = tmp_path_factory.mktemp("trained")
    tokenizer = build_tokenizer()
    for name, layers, seed in (("teacher", 4, 1), ("student", 2, 2), ("other", 1, 3)):
        save_tiny_model(root / name, vocab_size=len(tokenizer), layers=layers, seed=seed)
        tokenizer.save_pretrained(root / name)
    data = write_corpus(root / "d.txt")
    run_dir = root / "run"
    result = train(
        "--teacher", str(root / "teacher"), "--student", str(root / "student"),
        "--data", str(data), "--set", "max_length=16", "--set", "batch_size=4",
        "--set", "eval_max_batches=2", "--set", "save_steps=1", "--set", "keep_last=3",
        "--set", "warmup_steps=0",  # a 2-step run: the demo's warmup 40 is a pre-flight error
        "--max-steps", "2", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture
def run(trained_run, tmp_path):
    """A private copy of the trained run directory."""
    return shutil.copytree(trained_run, tmp_path / "run")


def metrics_steps(run_dir):
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["type"] == "run"], [
        e["step"] for e in events if e["type"] == "metrics"
    ]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (["--student", "OTHER"], "student_model"),
        (["--set", "feature_weight=0.5"], "feature_weight"),
        (["--set", "batch_size=2"], "batch_size"),
    ],
)
def test_resume_refuses_a_change_it_cannot_follow_and_touches_nothing(
    trained_run, run, change, named
):
    change = [str(trained_run.parent / "other") if a == "OTHER" else a for a in change]
    before = (run / "config.json").read_bytes()
    files_before = sorted(p.relative_to(run) for p in run.rglob("*"))
    refused = train("--resume", str(run), "--max-steps", "3", *change)
    assert refused.exit_code == 2, refused.output
    assert f"a resume cannot change {named}" in flat(refused.output)
    assert "Nothing was changed" in flat(refused.output)
    assert (run / "config.json").read_bytes() == before
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == files_before
    if named == "student_model":  # and a plain resume still works afterwards
        assert train("--resume", str(run), "--max-steps", "3").exit_code == 0


def test_resume_may_change_length_and_cadence_and_saves_them_once_started(run):
    result = train("--resume", str(run), "--max-steps", "3", "--set", "logging_steps=5")
    assert result.exit_code == 0, result.output
    assert "max_steps 2 -> 3: the LR schedule is re-planned" in flat(result.output)
    saved = json.loads((run / "config.json").read_text())
    assert (saved["max_steps"], saved["logging_steps"]) == (3, 5)
    runs, steps = metrics_steps(run)
    assert runs[-1]["resumed_from_step"] == 2 and steps[-1] == 3


def test_resume_past_the_planned_steps_is_refused_not_40_of_10(run):
    before = (run / "config.json").read_bytes()
    result = train("--resume", str(run), "--max-steps", "1")
    assert result.exit_code == 2
    assert "already at step 2" in flat(result.output) and "--max-steps above 2" in flat(
        result.output
    )
    assert (run / "config.json").read_bytes() == before


@pytest.mark.parametrize("victim", ["model.safetensors", "trainer_state.pt"])
def test_a_truncated_newest_checkpoint_falls_back_to_the_newest_good_one(run, victim):
    newest = run / "checkpoints/step-000002" / victim
    with newest.open("r+b") as file:
        file.truncate(newest.stat().st_size // 2)
    result = train("--resume", str(run), "--max-steps", "3")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert f"Checkpoint step-000002 skipped: {victim} is" in text and "truncated" in text
    assert "Resuming from step-000001, the newest good checkpoint." in text
    runs, steps = metrics_steps(run)
    assert runs[-1]["resumed_from_step"] == 1 and steps[-2:] == [2, 3]


def test_no_good_checkpoint_is_an_error_not_a_silent_restart(run):
    for folder in ckpt.complete_checkpoints(run / "checkpoints"):
        (folder / "model.safetensors").write_bytes(b"\0" * 100)
    result = train("--resume", str(run), "--max-steps", "3")
    assert result.exit_code == 2
    assert "no checkpoint can be resumed from" in flat(result.output)
    assert len(ckpt.complete_checkpoints(run / "checkpoints")) == 2  # nothing deleted


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(run):
    # What an early SIGTERM (or SIGKILL) leaves: the config, no checkpoint. A re-run is refused
    # ("use --resume"), so --resume must start it, from step 0 with its config.
    shutil.rmtree(run / "checkpoints")
    rerun = train("--run-dir", str(run))
    assert rerun.exit_code == 2 and f"--resume {run}" in flat(rerun.output)
    result = train("--resume", str(run), "--max-steps", "2")
    assert result.exit_code == 0, result.output
    assert "has no checkpoint yet" in flat(result.output) and "starting from step 0" in flat(
        result.output
    )
    assert [p.name for p in ckpt.complete_checkpoints(run / "checkpoints")][-1] == "step-000002"


def test_a_second_trainer_on_the_same_run_directory_is_refused(run):
    with run_lock(run):  # another trainer holds the run directory
        result = train("--resume", str(run), "--max-steps", "3")
    assert result.exit_code == 2
    assert f"another `doctor train` (pid {os.getpid()})" in flat(result.output)
    with run_lock(run):  # released when its holder is done
        pass


def test_a_lock_of_a_killed_trainer_is_not_stale(run):
    holder = (
        "import os, signal, sys; from pathlib import Path;"
        "from distill_doctor.trainer.run_dir import run_lock;"
        f"ctx = run_lock(Path({str(run)!r})); ctx.__enter__(); os.kill(os.getpid(), signal.SIGKILL)"
    )
    killed = subprocess.run([sys.executable, "-c", holder], timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert (run / LOCK_FILE).read_text().strip().isdigit()  # it did hold the lock
    with run_lock(run):
        pass


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "model.safetensors"),
        # what safetensors raises when the write fails (here: past `ulimit -f`)
        SafetensorError("Error while serializing: I/O error: No space left on device"),
    ],
)
def test_a_full_disk_during_a_checkpoint_keeps_the_last_good_one(run, monkeypatch, error):
    def no_space(*args, **kwargs):
        raise error

    monkeypatch.setattr(ckpt, "save_model", no_space)
    result = train("--resume", str(run), "--max-steps", "3")
    assert result.exit_code == 2
    text = flat(result.output)
    assert "could not write checkpoint step-000003" in text and "No space left on device" in text
    assert "step-000002, is kept" in text
    # no temp folder left behind
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000001", "step-000002"]


def test_a_resume_on_a_full_disk_is_a_message_and_keeps_the_config(run, monkeypatch):
    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr("distill_doctor.events.EventLog.write", no_space)
    before = (run / "config.json").read_bytes()
    result = train("--resume", str(run), "--max-steps", "3")
    assert result.exit_code == 2
    assert "events.jsonl: No space left on device" in flat(result.output)
    assert "--resume" in flat(result.output)
    assert ckpt.latest_checkpoint(run).name == "step-000002"
    # the config was written (max_steps 3) only if the run started; here the first event
    # failed after it: either way the file is whole JSON
    assert (
        json.loads((run / "config.json").read_text())["student_model"]
        == json.loads(before)["student_model"]
    )


def test_a_config_that_cannot_be_written_keeps_the_old_one_whole(run, monkeypatch):
    real_fsync = os.fsync

    def full_at_fsync(fd):  # the temp file is written, then the disk turns out to be full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    before = (run / "config.json").read_bytes()
    monkeypatch.setattr(os, "fsync", full_at_fsync)
    result = train("--resume", str(run), "--max-steps", "3")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert result.exit_code == 2
    assert f"{run / 'config.json'}: No space left on device" in flat(result.output)
    assert (run / "config.json").read_bytes() == before
    assert not (run / ".config.json.tmp").exists()


@pytest.mark.parametrize(
    ("place", "message"),
    [
        ("/proc/doctor-run", "cannot create the run directory"),
        ("FILE/run", "cannot create the run directory"),
        ("FILE", "exists and is not a directory"),
    ],
)
def test_a_run_directory_that_cannot_be_made_is_a_message(trained_run, tmp_path, place, message):
    (tmp_path / "file").write_text("not a folder")
    place = place.replace("FILE", str(tmp_path / "file"))
    config = trained_run / "config.json"
    result = train(str(config), "--run-dir", place)
    assert result.exit_code == 2
    assert message in flat(result.output)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_a_message(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    result = train(
        str(trained_run / "config.json"), "--set", "device=cuda", "--run-dir", str(run_dir)
    )
    assert result.exit_code == 2
    assert "sees no CUDA device" in flat(result.output)
    assert not (run_dir / "config.json").exists()  # a failed start leaves the folder reusable
