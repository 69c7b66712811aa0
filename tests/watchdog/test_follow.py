"""`Follower`: logs followed while they are written (a partial line held, new files picked up,
truncation, rotation, a rewritten CSV, a growing TensorBoard file, several logs by step)."""

from __future__ import annotations

import os
import time

import pytest

from distill_doctor.errors import InputError
from distill_doctor.watchdog.follow import Follower


def collect(follower, enough, seconds=10.0):
    """Updates until `enough(records, notices)` holds (or the time is up)."""
    records, notices = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not enough(records, notices):
        for update in follower.updates(0.05):
            if update.kind == "record":
                records.append(update.record)
            else:
                notices.append(update.text)
    return records, notices


def steps(records):
    return [r["step"] for r in records if "loss" in r]


def append(path, text):
    with open(path, "a") as file:
        file.write(text)


@pytest.fixture
def follow():
    made = []

    def start(target, **kwargs):
        made.append(Follower(str(target), **kwargs))
        return made[-1]

    yield start
    for follower in made:
        follower.close()


def test_a_partial_last_line_waits_for_its_end(tmp_path, follow):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    follower = follow(log)
    records, _ = collect(follower, lambda r, n: follower.caught_up and r)
    assert steps(records) == [1]
    append(log, 'ss": 1.5}\n')
    more, _ = collect(follower, lambda r, n: r)
    assert more == [{"step": 2, "loss": 1.5}]


def test_a_log_that_appears_in_the_folder_is_followed(tmp_path, follow):
    follower = follow(tmp_path)
    assert collect(follower, lambda r, n: False, seconds=0.3) == ([], [])
    (tmp_path / "train.log").write_text("step 1 | loss: 2.5\nstep 2 | loss: 2.4\n")
    (tmp_path / "README.md").write_text("# notes\n```\nstep 1 | loss: 2.5\n```\n")
    records, notices = collect(follower, lambda r, n: len(r) >= 2)
    assert steps(records) == [1, 2]
    assert notices == ["following train.log"]


def test_a_truncated_log_is_read_again_from_its_start(tmp_path, follow):
    log = tmp_path / "train.log"
    log.write_text("".join(f"step {s} | loss: {3 - s / 10}\n" for s in range(1, 4)))
    follower = follow(log)
    collect(follower, lambda r, n: len(r) >= 3)
    log.write_text("step 4 | loss: 2.5\n")  # shorter: truncated, then written again
    records, notices = collect(follower, lambda r, n: r)
    assert steps(records) == [4]
    assert any("was truncated" in n for n in notices)


def test_a_rotated_log_is_read_to_its_end_then_the_new_one_from_its_start(tmp_path, follow):
    log = tmp_path / "train.log"
    log.write_text("step 1 | loss: 2.9\n")
    follower = follow(log)
    collect(follower, lambda r, n: r)
    append(log, "step 2 | loss: 2.8\n")
    os.rename(log, tmp_path / "train.log.1")
    log.write_text("step 3 | loss: 2.7\nstep 4 | loss: 2.6\n")
    records, notices = collect(follower, lambda r, n: len(r) >= 3)
    assert steps(records) == [2, 3, 4]
    assert any("was replaced" in n for n in notices)


def test_a_csv_rewritten_with_a_new_column_repeats_no_step(tmp_path, follow):
    csv = tmp_path / "metrics.csv"
    csv.write_text("step,train_loss\n0,2.0\n1,1.9\n")
    follower = follow(csv)
    # The parser holds a row until the next (rows of one step are joined).
    assert collect(follower, lambda r, n: r)[0] == [{"step": 0, "loss": 2.0}]
    # Lightning's CSVLogger rewrites the whole file when a metric appears.
    csv.write_text("step,train_loss,val_loss\n0,2.0,\n1,1.9,\n2,1.8,2.1\n")
    records, notices = collect(follower, lambda r, n: r)
    append(csv, "3,1.7,\n")
    more, later = collect(follower, lambda r, n: r)
    notices += later
    assert records + more == [
        {"step": 1, "loss": 1.9},
        {"step": 2, "loss": 1.8, "eval_loss": 2.1},
    ]
    assert any("rewritten" in n or "truncated" in n for n in notices)


def test_a_growing_tensorboard_file_gives_each_step_once_complete(tmp_path, follow):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    def frame(step, **values):
        summary = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(tag=f"train/{k}", simple_value=v)
                for k, v in values.items()
            ]
        )
        event = event_pb2.Event(step=step, wall_time=time.time(), summary=summary)
        path = tmp_path / "frame"
        with open(path, "wb") as file:
            RecordWriter(file).write(event.SerializeToString())
        return path.read_bytes()

    board = tmp_path / "events.out.tfevents.1.host"
    board.write_bytes(frame(1, loss=2.0, learning_rate=1e-3))
    follower = follow(tmp_path)
    records, _ = collect(follower, lambda r, n: r)
    assert records == [{"step": 1, "loss": 2.0, "lr": pytest.approx(1e-3)}]
    second = frame(2, loss=float("nan"))
    with open(board, "ab") as file:
        file.write(second[:10])  # a record cut mid-write waits for its end
    assert collect(follower, lambda r, n: False, seconds=0.5)[0] == []
    with open(board, "ab") as file:
        file.write(second[10:])
    records, _ = collect(follower, lambda r, n: r)
    assert records[0]["step"] == 2 and records[0]["loss"] != records[0]["loss"]  # NaN kept


def test_logs_of_one_run_are_merged_by_step(tmp_path, follow):
    (tmp_path / "a.jsonl").write_text("".join(f'{{"step": {s}, "loss": 1}}\n' for s in (1, 3, 5)))
    (tmp_path / "b.jsonl").write_text("".join(f'{{"step": {s}, "loss": 2}}\n' for s in (2, 4, 6)))
    follower = follow(tmp_path)
    records, _ = collect(follower, lambda r, n: len(r) >= 6)
    assert steps(records) == [1, 2, 3, 4, 5, 6]


def test_a_path_that_is_not_there_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        Follower(str(tmp_path / "missing.log"))
    with pytest.raises(InputError, match="--format-in"):
        Follower(str(tmp_path), format_in="jsonl")


def test_a_log_rotated_in_a_followed_folder_is_not_read_twice(tmp_path, follow):
    log = tmp_path / "train.log"
    log.write_text("step 1 | loss: 2.9\nstep 2 | loss: 2.8\n")
    follower = follow(tmp_path)
    collect(follower, lambda r, n: len(r) >= 2)
    os.rename(log, tmp_path / "train.log.1")
    log.write_text("step 3 | loss: 2.7\n")
    records, notices = collect(follower, lambda r, n: r and follower.caught_up, seconds=3)
    assert steps(records) == [3]
    assert not any("train.log.1" in n for n in notices)
