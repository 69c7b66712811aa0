"""`adjust`: each repairable fault in a real (tiny) run is repaired in place, written down as
an action event, and the run comes home."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import tiny_config, write_corpus

from distill_doctor.rules.lr_schedule import lr_multiplier
from distill_doctor.trainer import loop
from distill_doctor.trainer.checkpoint import complete_checkpoints
from distill_doctor.trainer.sinks import EventsSink
from distill_doctor.watchdog.core import Watchdog
from distill_doctor.watchdog.policy import Action, Policy
from distill_doctor.watchdog.trainer_observer import TrainerWatchdog


class Lrs:
    def __init__(self) -> None:
        self.lrs: dict[int, float] = {}

    def on_run_start(self, info, control) -> None: ...

    def on_record(self, record) -> None:
        self.lrs[record["step"]] = record["lr"]

    def on_eval(self, record) -> None: ...

    def on_run_end(self, status) -> None: ...


def rescued_run(tiny_pair, tmp_path, fault, resume=False, **overrides):
    data = write_corpus(tmp_path / "d.txt", documents=80)
    values = dict(max_steps=10, warmup_steps=2, eval_steps=5, device="cpu", lr_scheduler="linear")
    cfg = tiny_config(tiny_pair, data, **{**values, **overrides})
    events = EventsSink(tmp_path / "run/events.jsonl", 1)
    watchdog = Watchdog(policy=Policy(on_error=Action.ADJUST), sinks=[events])
    lrs = Lrs()
    result = loop.train(
        cfg,
        tmp_path / "run",
        [TrainerWatchdog(watchdog), events, lrs],
        resume=resume,
        inject=(fault,) if fault else (),
        extra_state={"watchdog": watchdog},
    )
    actions = [
        json.loads(line)
        for line in (tmp_path / "run/events.jsonl").read_text().splitlines()
        if '"type": "action"' in line
    ]
    return watchdog, result, lrs.lrs, actions, cfg


def intended(cfg, step):
    """The LR the config's schedule gives the optimizer step `step` (1-based)."""
    return cfg.learning_rate * lr_multiplier(step - 1, 10, 2, "linear", 0.0)


@pytest.mark.parametrize(
    ("fault", "overrides"),
    [
        ("scheduler-per-microbatch", {"gradient_accumulation_steps": 4, "batch_size": 2}),
        ("scheduler-too-long", {}),
    ],
)
def test_schedule_is_rebuilt_and_the_run_ends_on_the_configs_schedule(
    tiny_pair, tmp_path, fault, overrides
):
    watchdog, result, lrs, actions, cfg = rescued_run(tiny_pair, tmp_path, fault, **overrides)
    assert result.status == "completed" and result.state.step == 10
    [repair] = [a for a in actions if a["action"] == "adjust"]
    assert repair["finding"] in ("scheduler-stepped-per-microbatch", "scheduler-steps-mismatch")
    assert repair["after"]["scheduler_steps"] == 10
    for step in range(repair["step"] + 3, 11):  # after the ramp: the config's own schedule
        assert lrs[step] == pytest.approx(intended(cfg, step), abs=1e-9)
    # No jump at the repair: the LR right after it continues from the LR before it.
    assert abs(lrs[repair["step"] + 1] - repair["before"]["lr"]) <= cfg.learning_rate / 2


def test_nan_step_is_skipped_and_training_goes_on(tiny_pair, tmp_path):
    watchdog, result, lrs, actions, cfg = rescued_run(tiny_pair, tmp_path, "nan-loss@3")
    assert result.status == "completed" and result.state.step == 10
    assert [(a["action"], a["finding"], a["step"]) for a in actions] == [
        ("skip", "nonfinite-loss", 3)
    ]
    [checkpoint] = complete_checkpoints(tmp_path / "run/checkpoints")[-1:]
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_masked_batch_is_skipped_and_counted(tiny_pair, tmp_path):
    watchdog, result, lrs, actions, cfg = rescued_run(tiny_pair, tmp_path, "all-masked-batch@5")
    assert result.status == "completed"
    assert [(a["action"], a["finding"], a["step"]) for a in actions] == [
        ("skip", "all-labels-masked", 5)
    ]


def test_a_resumed_run_keeps_its_repaired_schedule(tiny_pair, tmp_path):
    overrides = {"gradient_accumulation_steps": 4, "batch_size": 2}
    fault = "scheduler-per-microbatch"
    _, first, lrs_first, _, cfg = rescued_run(tiny_pair, tmp_path, fault, **overrides)
    assert first.status == "completed"
    # Again from the step-5 checkpoint: the repaired schedule must come back, not the fault's.
    for stale in complete_checkpoints(tmp_path / "run/checkpoints")[1:]:
        import shutil

        shutil.rmtree(stale)
    _, again, lrs_again, _, _ = rescued_run(tiny_pair, tmp_path, fault, resume=True, **overrides)
    assert again.status == "completed"
    for step in range(6, 11):
        assert lrs_again[step] == pytest.approx(lrs_first[step], abs=1e-9)


def test_non_finite_steps_in_a_row_roll_back_twice_then_abort(tiny_pair, tmp_path, monkeypatch):
    from distill_doctor.trainer.faults import Faults

    original = Faults._after_loss

    def nan_from_the_step_on(self, module, inputs, parts):  # a fault that does not go away
        if torch.is_grad_enabled() and self.current_step >= self.step:
            return {**parts, "loss": parts["loss"] * float("nan")}
        return original(self, module, inputs, parts)

    monkeypatch.setattr(Faults, "_after_loss", nan_from_the_step_on)
    watchdog, result, lrs, actions, cfg = rescued_run(
        tiny_pair, tmp_path, "nan-loss@5", max_steps=20, save_steps=2
    )
    kinds = [a["action"] for a in actions]
    rollbacks = [a for a in actions if a["action"] == "rollback"]
    assert len(rollbacks) == 2  # the bound
    # Steps 5-7 are NaN and skipped; the newest checkpoint (step 6) holds step 4's weights.
    assert rollbacks[0]["step"] == 7 and rollbacks[0]["after"]["weights_from_step"] == 6
    assert rollbacks[0]["after"]["lr"] == pytest.approx(rollbacks[0]["before"]["lr"] / 2, rel=0.3)
    assert result.status == "stopped" and result.stop_reason == "watchdog: nonfinite-loss"
    assert kinds[-1] == "abort"  # skips, two rollbacks, then the stop with the diagnosis
    [checkpoint] = complete_checkpoints(tmp_path / "run/checkpoints")[-1:]
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())
