"""`torchrun -m distill_doctor train` on CPU with gloo: real launcher, real processes, tiny
models (dropout-free Llamas, so that runs can be compared number for number).

    2 ranks == 1 process with the same global batch (losses, grads, weights, an epoch's short
    last micro-batch included); two nodes on one machine, with both injected faults caught
    under their ids; SIGTERM on one rank stops both after the same step with one checkpoint;
    a rank SIGKILLed mid-run: the survivor exits promptly, the checkpoint is intact; the
    resumes on 2 ranks continue exactly where the uninterrupted run went.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import build_tokenizer, save_tiny_model
from safetensors.torch import load_file
from train_helpers import write_corpus
from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.trainer.checkpoint import complete_checkpoints, read_state

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds ranks in /proc"),
]
STEPS = 8  # 57 padded blocks / (2 ranks x 2) -> 15 micro-batches (the last holds 1) / accum 2
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pair")
    tokenizer = build_tokenizer()
    save_tiny_model(root / "teacher", vocab_size=len(tokenizer), arch="llama", layers=2, seed=1)
    save_tiny_model(root / "student", vocab_size=len(tokenizer), arch="llama", layers=1, seed=2)
    for name in ("teacher", "student"):
        tokenizer.save_pretrained(root / name)
    write_corpus(root / "d.txt", documents=60)
    return root


def train_args(files: Path, run_dir: Path, batch_size: int, *extra: str) -> list[str]:
    return [
        "train", "--teacher", str(files / "teacher"), "--student", str(files / "student"),
        "--data", str(files / "d.txt"), "--run-dir", str(run_dir),
        "--set", "max_length=16", "--set", "pack=false", "--set", f"batch_size={batch_size}",
        "--set", "gradient_accumulation_steps=2", "--set", "learning_rate=0.01",
        "--set", "warmup_steps=1", "--set", "logging_steps=1", "--set", "eval_max_batches=2",
        "--allow-errors",  # lr 0.01 on a 12k-parameter student: the pre-flight says so
        *extra,
    ]  # fmt: skip


def torchrun(*launch: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "distill_doctor"]


def standalone(files: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    command = torchrun("--standalone", "--nproc-per-node", "2")
    command += train_args(files, run_dir, 2, *extra)
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def events_of(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, filter(str.strip, lines)) if e["type"] == kind]


def metrics(run_dir: Path) -> dict[int, dict]:
    """The last metrics event of each step (a resumed run appends to the log)."""
    return {e["step"]: e for e in events_of(run_dir, "metrics")}


@pytest.fixture(scope="module")
def one_process(files, tmp_path_factory) -> Path:
    """The reference run: one process, batch_size 4 = 2 ranks x 2."""
    run_dir = tmp_path_factory.mktemp("one") / "run"
    result = CliRunner().invoke(app, train_args(files, run_dir, 4))
    assert result.exit_code == 0, result.output
    return run_dir


def assert_same_training(got: dict[int, dict], expected: dict[int, dict], steps) -> None:
    for step in steps:
        for key in ("loss", "loss_ce", "loss_kd", "grad_norm", "checksum", "lr"):
            assert got[step][key] == pytest.approx(expected[step][key], rel=1e-5), (step, key)
        assert got[step]["valid_tokens"] == expected[step]["valid_tokens"]


def rank_pid(launcher: subprocess.Popen, rank: int) -> int:
    """The worker process of `rank` among the launcher's children."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours
        if parent == launcher.pid and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no worker of rank {rank} under pid {launcher.pid}")


def wait_for(condition, launcher: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert launcher.poll() is None, launcher.communicate()[0]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_ranks_train_exactly_like_one_process(files, one_process, tmp_path):
    run_dir = tmp_path / "run"
    launcher = standalone(files, run_dir)
    output = launcher.communicate(timeout=300)[0]
    assert launcher.returncode == 0, output

    got, reference = metrics(run_dir), metrics(one_process)
    assert sorted(got) == sorted(reference) == list(range(1, STEPS + 1))
    assert_same_training(got, reference, range(1, STEPS + 1))
    assert got[STEPS]["valid_tokens"] < got[1]["valid_tokens"]  # the short last micro-batch
    evals, expected = events_of(run_dir, "eval"), events_of(one_process, "eval")
    for key in ("eval_loss", "eval_ce", "eval_ppl", "teacher_ce"):  # sharded over the ranks
        assert [e[key] for e in evals] == pytest.approx([e[key] for e in expected], rel=1e-5)
    assert all(r["world_size"] == 2 and r["rank_checksum_spread"] == 0.0 for r in got.values())
    # rank 0 alone prints, logs and saves: one header, one run event, one checkpoint
    assert output.count("Config:") == 1 and "· 2 ranks" in output
    assert [e["world_size"] for e in events_of(run_dir, "run")] == [2]
    [checkpoint] = complete_checkpoints(run_dir / "checkpoints")
    assert checkpoint.name == f"step-{STEPS:06d}" and read_state(checkpoint).world_size == 2
    trainer_state = torch.load(checkpoint / "trainer_state.pt", weights_only=True)
    assert len(trainer_state["rng_per_rank"]) == 2


def test_two_nodes_complete_and_the_injected_faults_are_caught(files, tmp_path):
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    run_dir = tmp_path / "run"
    faults = ("--inject", "rank-desync", "--inject", "straggler", "--max-steps", "8")
    nodes = [
        subprocess.Popen(
            torchrun(
                "--nnodes",
                "2",
                "--node-rank",
                str(node),
                "--nproc-per-node",
                "1",
                "--rdzv-endpoint",
                f"localhost:{port}",
            )
            + train_args(files, run_dir, 2, *faults),
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert "Run directory:" in outputs[0] and "Run directory:" not in outputs[1]

    result = CliRunner().invoke(app, ["postmortem", str(run_dir), "--format", "json"])
    findings = {f["id"]: f for f in json.loads(result.output)["findings"]}
    # the weights of rank 1 move after step 1; it sleeps 0.25 s in every step
    assert findings["rank-desync"]["step"] == 2
    assert findings["rank-desync"]["evidence"]["outlier_rank"] == 1
    assert findings["straggler-rank"]["evidence"]["rank"] == 1


def test_stop_and_kill_on_one_rank_then_resume_on_two(files, one_process, tmp_path):
    run_dir = tmp_path / "run"
    slow = ("--inject", "straggler", "--set", "save_steps=1")  # 0.25 s steps, a save each

    # SIGTERM to rank 1 alone: both ranks stop after the same step; rank 0 saves once
    launcher = standalone(files, run_dir, *slow)
    wait_for(lambda: (run_dir / "events.jsonl").exists() and 2 in metrics(run_dir), launcher)
    os.kill(rank_pid(launcher, 1), signal.SIGTERM)
    output = launcher.communicate(timeout=120)[0]
    stopped = max(metrics(run_dir))
    assert launcher.returncode != 0 and stopped < STEPS, output
    assert output.count(f"Stopped at step {stopped} (SIGTERM); checkpoint saved") == 1
    assert complete_checkpoints(run_dir / "checkpoints")[-1].name == f"step-{stopped:06d}"

    # a checkpoint of 2 ranks resumes on 2 ranks only
    result = CliRunner().invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 2 and "written by 2 rank(s)" in result.output

    # resumed on 2 ranks, then rank 1 is killed: the survivor ends quickly, saying why
    command = torchrun("--standalone", "--nproc-per-node", "2")
    command += ["train", "--resume", str(run_dir), "--inject", "straggler"]
    launcher = subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_for(lambda: max(metrics(run_dir)) > stopped + 1, launcher)
    os.kill(rank_pid(launcher, 1), signal.SIGKILL)
    killed = time.monotonic()
    output = launcher.communicate(timeout=120)[0]
    assert launcher.returncode != 0 and time.monotonic() - killed < 60, output
    assert "lost contact with the other ranks" in output
    last = complete_checkpoints(run_dir / "checkpoints")[-1]
    assert stopped < read_state(last).step < STEPS
    assert load_file(last / "model.safetensors") and not list(last.parent.glob(".tmp-*"))
    # the resume went on exactly as the uninterrupted single process did
    steps = range(1, read_state(last).step + 1)
    assert_same_training(metrics(run_dir), metrics(one_process), steps)
