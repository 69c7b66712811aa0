"""Each `--inject` fault in a real (tiny) run is caught under its id, at its step, and an abort
stops the run with a checkpoint of good weights."""

from __future__ import annotations

import json
import math

import pytest
import torch
from train_helpers import tiny_config, write_corpus

from distill_doctor.trainer import loop
from distill_doctor.trainer.checkpoint import complete_checkpoints
from distill_doctor.trainer.faults import CAUGHT_AS, Faults
from distill_doctor.trainer.sinks import EventsSink
from distill_doctor.watchdog.core import Watchdog
from distill_doctor.watchdog.policy import Action, Policy
from distill_doctor.watchdog.trainer_observer import TrainerWatchdog

CPU = torch.device("cpu")


def watched_run(tiny_pair, tmp_path, fault=None, on_error=Action.ABORT, **overrides):
    data = write_corpus(tmp_path / "d.txt", documents=80)
    values = dict(max_steps=8, warmup_steps=1, eval_steps=4, device="cpu")
    cfg = tiny_config(tiny_pair, data, **{**values, **overrides})
    events = EventsSink(tmp_path / "run/events.jsonl", 1)
    watchdog = Watchdog(policy=Policy(on_error=on_error), sinks=[events])
    result = loop.train(
        cfg,
        tmp_path / "run",
        [TrainerWatchdog(watchdog), events],
        faults=Faults.parse([fault] if fault else []),
        extra_state={"watchdog": watchdog},
    )
    return watchdog, result


@pytest.mark.parametrize(
    ("fault", "overrides", "step"),
    [
        ("scheduler-per-microbatch", {"gradient_accumulation_steps": 4, "batch_size": 2}, 2),
        ("scheduler-too-long", {}, 0),
        ("nan-loss@3", {}, 3),
        ("frozen-student", {}, 0),
        ("teacher-train-mode", {}, 0),
    ],
)
def test_fault_is_caught_and_the_run_stops_at_once(tiny_pair, tmp_path, fault, overrides, step):
    watchdog, result = watched_run(tiny_pair, tmp_path, fault, **overrides)
    expected = CAUGHT_AS[fault.split("@")[0]]
    assert watchdog.abort is not None and watchdog.abort.id in expected
    assert watchdog.abort.step == step
    assert result.status == "stopped" and result.stop_reason == f"watchdog: {watchdog.abort.id}"
    assert result.state.step == step  # stopped within the step that showed it
    [checkpoint] = complete_checkpoints(tmp_path / "run/checkpoints")[-1:]
    events = [json.loads(x) for x in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "action" and e["finding"] == watchdog.abort.id for e in events)
    assert checkpoint.name == f"step-{step:06d}"


def test_nan_never_reaches_the_saved_weights(tiny_pair, tmp_path):
    watchdog, _ = watched_run(tiny_pair, tmp_path, "nan-loss@3")
    from safetensors.torch import load_file

    [checkpoint] = complete_checkpoints(tmp_path / "run/checkpoints")[-1:]
    weights = load_file(str(checkpoint / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_masked_batch_is_reported_at_its_step_and_training_goes_on(tiny_pair, tmp_path):
    watchdog, result = watched_run(tiny_pair, tmp_path, "all-masked-batch@3")
    [finding] = [f for f in watchdog.findings if f.id == "all-labels-masked"]
    assert finding.step == 3 and finding.evidence["masked_batches"] == 1
    assert result.status == "completed"  # one masked batch is a warning, not a stop


def test_healthy_run_has_no_findings_and_completes(tiny_pair, tmp_path):
    watchdog, result = watched_run(tiny_pair, tmp_path)
    assert watchdog.findings == []
    assert result.status == "completed"


def test_warn_policy_reports_but_never_stops(tiny_pair, tmp_path):
    watchdog, result = watched_run(tiny_pair, tmp_path, "frozen-student", on_error=Action.WARN)
    assert {f.id for f in watchdog.findings} >= {"params-frozen"}
    assert result.status == "completed"
    # The probe said it at step 0; the checksum detector's later finding is the same problem.
    assert [f.id for f in watchdog.findings].count("params-frozen") == 1


def test_a_crashing_detector_becomes_one_finding_and_training_goes_on(
    tiny_pair, tmp_path, monkeypatch
):
    from distill_doctor.detectors.loss_spike import LossSpike

    def broken(self, record):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(LossSpike, "update", broken)
    watchdog, result = watched_run(tiny_pair, tmp_path)
    [error] = [f for f in watchdog.findings if f.id == "watchdog-error"]
    assert "loss-spike" in error.message and "ZeroDivisionError" in error.message
    assert result.status == "completed" and result.state.step == 8


def test_resume_keeps_the_history_and_says_nothing_twice(tiny_pair, tmp_path):
    watchdog, first = watched_run(
        tiny_pair, tmp_path, "all-masked-batch@2", max_steps=4, warmup_steps=0
    )
    assert [f.id for f in watchdog.findings] == ["all-labels-masked"]
    cfg = tiny_config(
        tiny_pair, tmp_path / "d.txt", max_steps=8, warmup_steps=0, eval_steps=4, device="cpu"
    )
    resumed = Watchdog(policy=Policy(on_error=Action.ABORT))
    loop.train(
        cfg,
        tmp_path / "run",
        [TrainerWatchdog(resumed)],
        resume=True,
        extra_state={"watchdog": resumed},
    )
    assert [(f.id, f.step) for f in resumed.findings] == [("all-labels-masked", 2)]  # not again
    assert len(resumed.history) == 8  # 4 replayed + 4 new records
    assert all(math.isfinite(r["loss"]) for r in resumed.history)
