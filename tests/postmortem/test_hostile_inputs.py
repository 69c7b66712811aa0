"""Issue 9 on the postmortem side: input as a hostile or careless user gives it. Streams read
once, files that never end refused, regexes linear on long lines, nesting and huge numbers,
malformed findings, more files than the open-file limit, an empty Lightning `_epoch` column.
Each case failed on the main branch before these fixes (a wrong answer, a hang, a
traceback); the time bounds here are alarms against a hang, not speed targets."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from distill_doctor.cli import app
from distill_doctor.postmortem.formats import all_parsers
from distill_doctor.postmortem.parsers import ParseOptions, hf_stdout, plain_text, seed_text, wordlm
from distill_doctor.postmortem.skipped import Skipped

FIXTURES = Path(__file__).parent / "fixtures"
SEED_BROKEN = FIXTURES / "seed_broken.log"
DOCTOR = [sys.executable, "-m", "distill_doctor", "postmortem"]


@contextlib.contextmanager
def alarm(seconds: float):
    """Fail instead of hanging: on the main branch these inputs took 46 s to forever."""

    def expired(signum, frame):
        raise TimeoutError(f"took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def invoke(*args: str):
    return CliRunner().invoke(app, ["postmortem", *args])


def clean_exit(result) -> None:
    """Exit 0/1/2 by the CLI's own hand: no exception escaped."""
    assert isinstance(result.exception, SystemExit) or result.exception is None, result.output
    assert result.exit_code in (0, 1, 2)


@pytest.mark.parametrize("name", ["-", "/dev/stdin"])
def test_a_piped_log_is_read_once_and_diagnosed(name):
    out = subprocess.run(
        [*DOCTOR, name, "--format", "json"],
        input=SEED_BROKEN.read_bytes(),
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    document = json.loads(out.stdout)
    assert document["verdict"] == "sick" and document["records"] > 30
    assert "lr-zero" in {f["id"] for f in document["findings"]}


def test_process_substitution_is_read_once():
    command = " ".join([*DOCTOR, f"<(cat {SEED_BROKEN})", "--format", "json"])
    out = subprocess.run(["bash", "-c", command], capture_output=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["verdict"] == "sick"


def test_a_named_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    out = subprocess.run([*DOCTOR, str(fifo)], capture_output=True, text=True, timeout=60)
    assert (
        out.returncode == 2
        and "named pipe" in " ".join(out.stderr.split())
        and "Traceback" not in out.stderr
    )


def test_dev_zero_is_refused_even_with_a_forced_format():
    with alarm(30):
        result = invoke("/dev/zero", "--format-in", "seed-text")
    assert result.exit_code == 2 and "device" in result.output


@pytest.mark.parametrize(
    "line",
    [
        b"[Eval] " + b"x" * 80_000,
        b"loss=1.0" + b"x" * 80_000,
        b"loss=1.0 " + b"a " * 40_000,
        b"Step 1: " + b"1" * 80_000,
        b"\x1b[" + b"1" * 80_000,
        b"1" * 80_000 + b"/",
    ],
)
@pytest.mark.parametrize("parser", [seed_text, plain_text, hf_stdout, wordlm])
def test_long_lines_parse_in_linear_time(tmp_path, line, parser):
    path = tmp_path / "long.log"
    path.write_bytes(b"loss=2.0 lr=1e-4\n" + line + b"\n" + b"{'loss': " + line[:40000] + b"}\n")
    with alarm(5):
        list(parser.parse(path, Skipped("long"), ParseOptions()))


def test_the_sniffer_is_linear_on_blank_lines(tmp_path):
    path = tmp_path / "blank.log"
    path.write_bytes(b"\n" * 60_000 + b" " * 5000 + b"\nloss=1.0 lr=0.1\n")
    with alarm(5):
        result = invoke(str(path))
    clean_exit(result)


@pytest.mark.parametrize(
    "first_line",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 100_000 + b"1" + b"}" * 100_000],
)
@pytest.mark.parametrize("name", ["run.jsonl", "events.jsonl", "trainer_state.json", "t.log"])
def test_json_nested_100000_deep_is_a_clean_exit(tmp_path, first_line, name):
    path = tmp_path / name
    path.write_bytes(first_line + b'\n{"step": 1, "loss": 2.0}\n')
    result = invoke(str(path))
    clean_exit(result)


def test_huge_integers_do_not_reach_the_detectors_as_ints(tmp_path):
    path = tmp_path / "big.jsonl"
    rows = [f'{{"step": {s}, "loss": {2 - s / 100}, "grad_norm": 1.0}}' for s in range(1, 40)]
    rows.insert(5, '{"step": 6, "loss": 1' + "0" * 30 + ', "grad_norm": 1' + "0" * 4000 + "}")
    path.write_text("\n".join(rows) + "\n")
    result = invoke(str(path), "--format", "json")
    clean_exit(result)


@pytest.mark.parametrize(
    "finding",
    [
        {"id": "x", "severity": "catastrophic", "message": "m"},
        {"id": "x", "severity": ["error"], "message": "m"},
        {"id": "x", "severity": "error", "evidence": [1, 2]},
        {"id": "x", "severity": "error", "evidence": "text"},
        {"id": "x", "severity": "error", "step": "ten"},
    ],
)
def test_a_malformed_logged_finding_is_skipped(tmp_path, finding):
    log = tmp_path / "events.jsonl"
    log.write_text(
        '{"type": "run", "planned_steps": 10}\n'
        + json.dumps({"type": "finding", **finding})
        + "\n"
        + "".join(f'{{"type": "metrics", "step": {s}, "lr": 0.001, "loss": 3.0}}\n' for s in (1, 2))
    )
    result = invoke(str(log), "--format", "json")
    clean_exit(result)
    document = json.loads(result.stdout)
    assert "x" not in {f["id"] for f in document["findings"]}
    assert document["skipped"][0]["lines"] == 1


def test_more_files_than_the_open_file_limit(tmp_path):
    # One run merged from 100 files under a limit of 64 descriptors: each file is opened,
    # read a chunk at a time and closed, never held while the merge waits on it.
    (tmp_path / "train.jsonl").write_text(
        "".join(f'{{"step": {s}, "loss": {3 - s / 100}, "lr": 1e-3}}\n' for s in range(200))
    )
    for n in range(100):
        (tmp_path / f"eval_{n:03d}.jsonl").write_text(f'{{"step": {2 * n}, "eval_loss": 2.5}}\n')

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    out = subprocess.run(
        [*DOCTOR, *sorted(str(p) for p in tmp_path.iterdir()), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )
    assert "Traceback" not in out.stderr and out.returncode in (0, 1), out.stderr[-2000:]
    document = json.loads(out.stdout)
    assert len(document["sources"]) == 101 and document["records"] == 300


def test_lightning_csv_with_an_empty_epoch_column_still_has_its_loss(tmp_path):
    path = tmp_path / "metrics.csv"
    rows = [f"{2.5 - s / 100},,0,{s}" for s in range(143)]
    path.write_text("train_loss_step,train_loss_epoch,epoch,step\n" + "\n".join(rows) + "\n")
    result = invoke(str(path), "--format", "json")
    document = json.loads(result.stdout)
    assert document["verdict"] != "no-data" and document["records"] == 143


# Adversarial pieces a log line is built from: deep nesting, huge numbers, long runs, binary.
_PIECES = st.sampled_from(
    [
        b"[" * 5000,
        b"{" * 5000,
        b'{"a": ' * 3000,
        b"{'loss': " * 2000,
        b"9" * 5000,
        b"1e999999",
        b"-0.0e-0",
        b"nan",
        b"inf",
        b"loss=",
        b"loss: ",
        b"[Eval] ",
        b"Step 1: ",
        b"Epoch: 3, ",
        b" " * 20000,
        b"\r" * 3000,
        b"x" * 30000,
        b"\x1b[" * 2000,
        b"\x00\xff\xfe",
        b"\n",
        b"\r\n",
        b"| epoch 1 | 1/9 batches | lr ",
        b'{"type": "finding", "id": "x", "severity": ',
        b'"log_history": [',
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(st.one_of(_PIECES, st.binary(max_size=200)), min_size=1, max_size=12),
    name=st.sampled_from(["t.log", "m.jsonl", "trainer_state.json", "metrics.csv", "events.jsonl"]),
)
def test_every_parser_on_adversarial_lines(tmp_path_factory, pieces, name):
    path = tmp_path_factory.mktemp("adv") / name
    path.write_bytes(b"".join(pieces))
    with alarm(20):
        for parser in all_parsers():
            list(parser.parse(path, Skipped("adv"), ParseOptions()))
        result = invoke(str(path), "--format", "json")
    clean_exit(result)


def test_a_file_in_a_folder_the_user_cannot_enter(tmp_path, monkeypatch):
    # Root ignores permissions, so the refusal the kernel gives a user is simulated.
    from pathlib import Path as RealPath

    locked = tmp_path / "locked" / "train.log"
    real_stat = RealPath.stat

    def stat(self, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied")
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(RealPath, "stat", stat)
    result = invoke(str(locked))
    # Words, not where the console wraps a temp path of any length.
    assert result.exit_code == 2 and "permission denied" in " ".join(result.output.split())
