"""`doctor watch` on real `transformers.Trainer` runs, followed while they train: three runs
in one subprocess (`hf_runs.py`), a `doctor watch` on each output folder started before the
run writes anything, and one on the masked run's stdout through a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

HERE = Path(__file__).parent
LOGGING_STEPS = 2  # hf_runs.LOGGING_STEPS
DOCTOR = [sys.executable, "-m", "distill_doctor"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
FINDING = re.compile(r"^\[Doctor\] \[(\w+)\] ([\w-]+) \(step (\d+)")
SAID_AT = re.compile(r"said at step (\d+)")


def findings(output: str) -> list[tuple[str, str, int, int]]:
    """(severity, id, step, the step the watch had read when it said it) per finding."""
    found = []
    lines = output.splitlines()
    for line, after in zip(lines, lines[1:] + [""], strict=True):
        match = FINDING.match(line)
        if match:
            said = SAID_AT.search(after)
            step = int(match.group(3))
            found.append(
                (match.group(1), match.group(2), step, int(said.group(1)) if said else step)
            )
    return found


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    names = ("healthy", "too-few-steps", "masked")
    watchers = {}
    # Each watcher ends 6 s after its run's logs stop growing: a 2-core CI machine under
    # load can pause a tiny run between two logs for seconds, which must not end the watch.
    for name in names:
        (root / name).mkdir()
        watchers[name] = subprocess.Popen(
            [*DOCTOR, "watch", str(root / name), "--idle-timeout", "6"],
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
    training = subprocess.Popen(
        [sys.executable, str(HERE / "hf_runs.py"), str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    watchers["pipe"] = subprocess.Popen(
        [*DOCTOR, "watch", "-", "--logging-steps", str(LOGGING_STEPS)],
        stdin=training.stdout,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    training.stdout.close()  # the pipe watcher holds the only reading end
    assert training.wait(timeout=300) == 0
    results = {}
    for name, watcher in watchers.items():
        out, _ = watcher.communicate(timeout=120)
        results[name] = (watcher.returncode, out)
    return results


def test_healthy_run_raises_nothing(watched):
    code, out = watched["healthy"]
    assert code == 0, out
    assert findings(out) == []
    assert "15 records to step 30" in out


def test_scheduler_told_too_few_steps_is_caught_within_two_logging_intervals(watched):
    code, out = watched["too-few-steps"]
    assert code == 1, out
    [(severity, _, step, said_at)] = [f for f in findings(out) if f[1] == "lr-zero"]
    # The first record with LR 0 is step 12 (the schedule was told 10 steps).
    assert severity == "error" and step == 12
    assert said_at <= step + 2 * LOGGING_STEPS


def test_all_masked_labels_are_caught_within_two_logging_intervals(watched):
    code, out = watched["masked"]
    assert code == 1, out
    masked = [f for f in findings(out) if f[1] == "all-labels-masked"]
    first_fault = 12  # the first logging window with a masked batch (grad_norm 0)
    assert masked[0][0] == "warning" and masked[0][3] <= first_fault + 2 * LOGGING_STEPS
    assert masked[1][0] == "error"


def test_a_pipe_of_the_trainers_stdout_is_watched_to_its_end(watched):
    code, out = watched["pipe"]
    assert code == 1, out
    assert "the stream ended" in out
    masked = [f for f in findings(out) if f[1] == "all-labels-masked"]
    assert masked and masked[0][3] <= 12 + 2 * LOGGING_STEPS
