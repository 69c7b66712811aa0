"""The loop: one scheduler/optimizer step per accumulated batch, accumulation equivalence, a
frozen teacher, exact resume, all-masked batches, and what events.jsonl holds."""

import json
import math

import pytest
import torch
from train_helpers import tiny_config, write_corpus

from distill_doctor.config.steps import optimizer_steps
from distill_doctor.trainer import loop
from distill_doctor.trainer.hooks import TrainControl
from distill_doctor.trainer.sinks import EventsSink, tensorboard_tag

CPU = torch.device("cpu")


class Recorder:
    """An observer that keeps every record; can request a stop at a given step."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.records, self.evals, self.info, self.status = [], [], None, None
        self.stop_at, self.control = stop_at, None

    def on_run_start(self, info, control: TrainControl) -> None:
        self.info, self.control = info, control

    def on_record(self, record) -> None:
        self.records.append(record)
        if record["step"] == self.stop_at:
            self.control.request_stop("test asked")

    def on_eval(self, record) -> None:
        self.evals.append(record)

    def on_run_end(self, status) -> None:
        self.status = status


def test_scheduler_and_optimizer_step_once_per_optimizer_step(tiny_pair, tmp_path, monkeypatch):
    calls = {"scheduler": 0, "optimizer": 0}
    scheduler_step, optimizer_step = torch.optim.lr_scheduler.LambdaLR.step, torch.optim.AdamW.step

    def counting_scheduler_step(self, *args, **kwargs):
        calls["scheduler"] += 1
        return scheduler_step(self, *args, **kwargs)

    def counting_optimizer_step(self, *args, **kwargs):
        calls["optimizer"] += 1
        return optimizer_step(self, *args, **kwargs)

    data = write_corpus(tmp_path / "d.txt", documents=40)
    # 38 train docs -> 10 micro-batches of 4 -> 3 full accumulated batches + 1 leftover, x2
    cfg = tiny_config(
        tiny_pair,
        data,
        pack=False,
        gradient_accumulation_steps=3,
        epochs=2.0,
        warmup_steps=2,
        lr_scheduler="linear",
        min_lr_ratio=0.1,
    )
    recorder = Recorder()
    monkeypatch.setattr(torch.optim.AdamW, "step", counting_optimizer_step)
    run = loop.setup(cfg, CPU)  # count the scheduler after its own call at creation
    monkeypatch.setattr(loop, "setup", lambda cfg, device: run)
    monkeypatch.setattr(torch.optim.lr_scheduler.LambdaLR, "step", counting_scheduler_step)
    result = loop.train(cfg, tmp_path / "run", [recorder])

    planned = optimizer_steps(recorder.info["train_blocks"], 4, 3, 2.0)
    assert planned == 8 and recorder.info["planned_steps"] == 8 and result.state.step == 8
    assert calls == {"scheduler": 8, "optimizer": 8}
    assert [r["step"] for r in recorder.records] == list(range(1, 9))
    lrs = [r["lr"] for r in recorder.records]
    assert lrs[:3] == pytest.approx([0.0, 5e-4, 1e-3])  # warmup 2 from 0, as HF does
    # after the last step the LR sits at the configured floor: 0.1 x 1e-3
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def first_group_gradients(cfg):
    run = loop.setup(cfg, CPU)
    run.student.eval()  # no dropout: the two runs must see the same function
    grads = {}

    def capture(optimizer, args, kwargs):
        grads.update({n: p.grad.clone() for n, p in run.student.named_parameters()})

    # A pre-step hook reads the gradients without replacing optimizer.step: the scheduler
    # wrapped that method when it was built, and a replaced one is the pattern torch warns of.
    run.optimizer.register_step_pre_hook(capture)
    group = loop.epoch_groups(run, 0, 0)[0]
    metrics = loop.accumulated_step(run, group, loop.ckpt.TrainState())
    return metrics, grads


def test_accumulation_of_4_by_2_equals_one_batch_of_8(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt", documents=40)
    common = dict(pack=False, max_grad_norm=None)  # padded: micro-batches differ in tokens
    small, small_grads = first_group_gradients(
        tiny_config(tiny_pair, data, batch_size=2, gradient_accumulation_steps=4, **common)
    )
    big, big_grads = first_group_gradients(tiny_config(tiny_pair, data, batch_size=8, **common))
    assert small["valid_tokens"] == big["valid_tokens"] > 0
    for key in ("loss", "ce", "kd", "grad_norm"):
        assert small[key] == pytest.approx(big[key], rel=1e-5)
    for name, grad in big_grads.items():
        torch.testing.assert_close(small_grads[name], grad, rtol=1e-4, atol=1e-6)


def test_teacher_is_frozen_and_never_optimised(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt", documents=40)
    run = loop.setup(tiny_config(tiny_pair, data), CPU)
    teacher = run.teacher
    before = {n: p.clone() for n, p in teacher.named_parameters()}
    optimised = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in teacher.parameters()}
    state = loop.ckpt.TrainState()
    for group in loop.epoch_groups(run, 0, 0)[:3]:
        loop.accumulated_step(run, group, state)
    assert not teacher.training
    for name, param in teacher.named_parameters():
        assert not param.requires_grad and param.grad is None
        assert torch.equal(param, before[name])


def test_all_masked_batch_is_counted_not_divided_by_zero(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt", documents=40)
    run = loop.setup(tiny_config(tiny_pair, data), CPU)
    group = loop.epoch_groups(run, 0, 0)[0]
    masked = [{**batch, "labels": torch.full_like(batch["labels"], -100)} for batch in group]
    state = loop.ckpt.TrainState()
    metrics = loop.accumulated_step(run, masked, state)
    assert state.all_masked_batches == 1 and metrics["valid_tokens"] == 0
    assert metrics["loss"] == 0.0 and math.isfinite(metrics["grad_norm"])


@pytest.mark.parametrize(
    "losses",
    [{}, {"feature_weight": 1.0, "attention_weight": 1.0, "attention_layers": 1}],
    ids=["ce+kd", "with-learned-projections"],
)
def test_resume_continues_exactly(tiny_pair, tmp_path, losses):
    data = write_corpus(tmp_path / "d.txt", documents=60)
    # GPT-2's dropout draws random numbers: an exact resume must restore the RNG too; the
    # feature loss's projections are trained and must come back from loss.safetensors
    cfg = tiny_config(
        tiny_pair, data, max_steps=6, gradient_accumulation_steps=2, eval_steps=2, **losses
    )
    whole = Recorder()
    loop.train(cfg, tmp_path / "whole", [whole])

    first, second = Recorder(stop_at=3), Recorder()
    stopped = loop.train(cfg, tmp_path / "split", [first])
    assert stopped.status == "stopped" and stopped.state.step == 3
    assert (tmp_path / "split/checkpoints/step-000003/state.json").is_file()
    resumed = loop.train(cfg, tmp_path / "split", [second], resume=True)
    assert resumed.status == "completed" and second.info["resumed_from_step"] == 3

    assert [r["step"] for r in second.records] == [4, 5, 6]
    for key in [
        k for k in whole.records[0] if k.startswith("loss") or k in ("grad_norm", "lr", "checksum")
    ]:
        expected = [r[key] for r in whole.records[3:]]
        assert [r[key] for r in second.records] == pytest.approx(expected, rel=1e-6)
    assert second.evals[-1]["eval_loss"] == pytest.approx(whole.evals[-1]["eval_loss"], rel=1e-6)


def test_events_jsonl_holds_run_metrics_and_eval_events(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt", documents=40)
    cfg = tiny_config(tiny_pair, data, max_steps=4, eval_steps=2, logging_steps=3)
    loop.train(cfg, tmp_path / "run", [EventsSink(tmp_path / "run/events.jsonl", 3)])
    events = [json.loads(line) for line in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    start = events[0]
    assert start["type"] == "run" and start["planned_steps"] == 4 and start["device"] == "cpu"
    assert start["config"]["max_steps"] == 4 and "torch" in start["versions"]
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [m["step"] for m in metrics] == [1, 3, 4]  # step 1, every 3rd, and the last
    for key in (
        "epoch",
        "lr",
        "loss",
        "loss_ce",
        "loss_kd",
        "grad_norm",
        "checksum",
        "valid_tokens",
        "steps_per_s",
        "tokens_per_s",
        "planned_steps",
    ):
        assert all(key in m for m in metrics), key
    assert metrics[0]["loss"] == pytest.approx(
        0.5 * metrics[0]["loss_ce"] + 0.5 * metrics[0]["loss_kd"]
    )
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [0, 2, 4]
    for e in evals:
        assert e["eval_ppl"] == pytest.approx(math.exp(e["eval_ce"]))
        assert e["teacher_ce"] > 0 and "eval_kd" in e and "eval_teacher_ce" not in e


def test_tensorboard_tags_map_back_to_the_same_record_keys():
    from distill_doctor.postmortem.keys import record_key

    for key in (
        "loss",
        "lr",
        "loss_ce",
        "loss_kd",
        "grad_norm",
        "checksum",
        "eval_loss",
        "eval_ce",
        "eval_ppl",
        "eval_kd",
        "valid_tokens",
        "planned_steps",
    ):
        assert record_key(tensorboard_tag(key)) == key
    assert record_key(tensorboard_tag("teacher_ce")) is None  # a reference line, not a metric


def test_weight_decay_skips_biases_and_norms(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt", documents=40)
    run = loop.setup(tiny_config(tiny_pair, data, weight_decay=0.1), CPU)
    decayed, plain = run.optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    names = {id(p): n for n, p in run.student.named_parameters()}
    assert all(p.ndim >= 2 for p in decayed["params"])
    assert {names[id(p)].rsplit(".", 1)[-1] for p in plain["params"]} == {"bias", "weight"}
    assert all("ln" in names[id(p)] or names[id(p)].endswith("bias") for p in plain["params"])


def test_preflight_runs_the_config_rules_with_the_real_dataset_size(tiny_pair, tmp_path):
    data = write_corpus(tmp_path / "d.txt", documents=40)
    # The seed's bug on purpose: the scheduler is told 10x the optimizer steps that run.
    cfg = tiny_config(tiny_pair, data, max_steps=4, num_training_steps=40, train_samples=999)
    recorder = Recorder()
    loop.train(cfg, tmp_path / "run", [recorder, EventsSink(tmp_path / "run/events.jsonl", 1)])
    [mismatch] = [f for f in recorder.info["preflight"] if f.id == "scheduler-steps-mismatch"]
    assert mismatch.evidence["optimizer_steps"] == 4  # the real plan, not train_samples=999
    assert mismatch.evidence["scheduler_steps"] == 40
    assert recorder.info["train_samples_in_config"] == 999
    assert recorder.info["train_blocks"] != 999
    events = [json.loads(line) for line in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    logged = [e for e in events if e["type"] == "finding"]
    assert [e["id"] for e in logged] == [f.id for f in recorder.info["preflight"]]
    assert "preflight" not in events[0]  # the run event stays plain; findings are events

    from distill_doctor.postmortem.analysis import analyze

    reported = {f.id for f in analyze([tmp_path / "run/events.jsonl"]).findings}
    assert "scheduler-steps-mismatch" in reported
