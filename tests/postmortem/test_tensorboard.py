"""TensorBoard event files written by torch's SummaryWriter and by tensorboard's own writer
(test-only torch use), a run directory, and a file cut off mid-record."""

from __future__ import annotations

import math

import pytest

from distill_doctor.postmortem.analysis import analyze
from distill_doctor.postmortem.parsers import tensorboard


@pytest.fixture
def run_dir(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "run"))
    for step in range(1, 41):
        writer.add_scalar("train/loss", float("nan") if step >= 30 else 5 - 0.1 * step, step)
        writer.add_scalar("train/learning_rate", 1e-4, step)
        if step % 10 == 0:
            writer.add_scalar("eval/loss", 4.5 - 0.05 * step, step)
    writer.close()
    return tmp_path / "run"


def _event_file(run_dir):
    return next(run_dir.glob("events.out.tfevents.*"))


def test_tags_map_to_record_keys_one_record_per_step(run_dir, parse_all):
    records, skipped = parse_all(tensorboard, _event_file(run_dir))
    assert [r["step"] for r in records] == list(range(1, 41))
    assert records[9]["loss"] == pytest.approx(4.0) and records[9]["eval_loss"] == pytest.approx(
        4.0
    )
    assert records[0]["lr"] == pytest.approx(1e-4) and "eval_loss" not in records[0]
    assert math.isnan(records[29]["loss"]) and skipped.lines == 0


def test_run_directory_is_analysed(run_dir):
    analysis = analyze([run_dir])
    assert [s.format for s in analysis.sources] == ["tensorboard"]
    assert ("nonfinite-loss", 30) in [(f.id, f.step) for f in analysis.findings]


def test_cut_off_mid_record_keeps_what_came_before(run_dir, tmp_path, parse_all):
    data = _event_file(run_dir).read_bytes()
    cut = tmp_path / "events.out.tfevents.cut"
    cut.write_bytes(data[: len(data) - 25])
    records, skipped = parse_all(tensorboard, cut)
    assert records[-1]["step"] == 40 and "eval_loss" not in records[-1]  # cut
    assert skipped.reasons == {"cut-off or corrupt event record at the end": 1}
    assert 0 < skipped.bytes < 100


def test_tensor_scalars_of_tensorboards_own_writer(tmp_path, parse_all):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(tmp_path))
    for step in (5, 10):
        value = summary_pb2.Summary.Value(
            tag="loss/kd", tensor=tensor_util.make_tensor_proto(0.5 * step)
        )
        writer.add_event(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[value])))
    writer.close()
    records, _ = parse_all(tensorboard, next(tmp_path.glob("*tfevents*")))
    assert records == [{"step": 5, "loss_kd": 2.5}, {"step": 10, "loss_kd": 5.0}]


def test_healthy_run_has_no_problem(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step in range(1, 301):
        writer.add_scalar("train/loss", 2 + 3 * math.exp(-step / 80) + 0.02 * math.sin(step), step)
        writer.add_scalar("train/lr", 3e-4 * min(1.0, step / 30) * (1 - step / 400), step)
        writer.add_scalar("train/grad_norm", 1.0 + 0.1 * math.cos(step), step)
        if step % 50 == 0:
            writer.add_scalar("eval/loss", 2.2 + 3 * math.exp(-step / 80), step)
    writer.close()
    analysis = analyze([tmp_path])
    assert analysis.metric_records == 300
    assert [f.id for f in analysis.findings if f.severity.value != "info"] == []


def test_a_bundled_trainer_run_directory_is_read_through_its_events_jsonl(run_dir, fixture):
    # `doctor train` writes events.jsonl beside its TensorBoard files: the richer log wins.
    (run_dir / "events.jsonl").write_bytes(fixture("events_healthy.jsonl").read_bytes())
    analysis = analyze([run_dir])
    assert [s.format for s in analysis.sources] == ["events-jsonl"]
    assert [s.path.name for s in analysis.sources] == ["events.jsonl"]
