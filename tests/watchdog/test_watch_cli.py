"""`doctor watch` from the command line: actions (--exec, --kill-pid, --exit-on), exit codes,
bad input, a pipe, and no torch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from typer.testing import CliRunner

from distill_doctor.cli import app

NAN_LOG = "".join(f"step {s} | lr: 1e-3 | loss: {3 - s / 100}\n" for s in range(1, 6))
NAN_LOG += "step 6 | lr: 1e-3 | loss: nan\n"
HEALTHY_LOG = "".join(f"step {s} | lr: 1e-3 | loss: {3 - s / 100}\n" for s in range(1, 6))


def watch(*args):
    return CliRunner().invoke(app, ["watch", *map(str, args)])


def test_each_finding_runs_the_exec_command_with_the_finding_in_its_environment(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(NAN_LOG)
    seen = tmp_path / "seen.txt"
    command = (
        'printf "%s|%s|%s|%s\\n" "$DOCTOR_FINDING_ID" "$DOCTOR_FINDING_SEVERITY" '
        f'"$DOCTOR_FINDING_STEP" "$DOCTOR_FINDING_MESSAGE" >> {seen}; '
        f'printf "%s" "$DOCTOR_FINDING_JSON" > {tmp_path / "finding.json"}'
    )
    result = watch(log, "--exec", command, "--idle-timeout", "0.5")
    assert result.exit_code == 1, result.output
    [line] = seen.read_text().splitlines()
    assert line.startswith("nonfinite-loss|error|6|Non-finite loss at step 6")
    document = json.loads((tmp_path / "finding.json").read_text())
    assert document["id"] == "nonfinite-loss" and document["action"] == "warn"
    assert document["evidence"]["field"] == "loss"


def test_a_failing_exec_command_is_reported(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(NAN_LOG)
    result = watch(log, "--exec", "exit 3", "--idle-timeout", "0.5")
    assert "--exec for nonfinite-loss exited with 3" in result.output


def test_kill_pid_stops_the_run_on_an_error_finding(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(NAN_LOG)
    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        result = watch(log, "--kill-pid", run.pid, "--signal", "INT", "--exit-on", "error")
        assert result.exit_code == 1, result.output
        assert run.wait(timeout=10) != 0  # KeyboardInterrupt in the sleeping "run"
        assert f"sent SIGINT to pid {run.pid}" in result.output
    finally:
        run.kill()
        run.wait()


def test_kill_waits_for_the_checkpoint_the_logs_show_is_due(tmp_path):
    from distill_doctor.watchdog.actions import ProcessKiller
    from distill_doctor.watchdog.run_plan import RunPlan

    said: list[str] = []
    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        killer = ProcessKiller(run.pid, "TERM", True, RunPlan(save_steps=50), said.append)
        killer.step = 62
        killer.request_stop("watchdog: lr-zero")
        assert killer.due == 100 and run.poll() is None
        killer.on_checkpoint(100)
        assert run.wait(timeout=10) == -signal.SIGTERM
        assert said[-1].startswith(f"sent SIGTERM to pid {run.pid}")
    finally:
        run.kill()
        run.wait()


def test_exit_on_warning_ends_the_watch_at_the_first_finding(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(NAN_LOG)
    result = watch(log, "--exit-on", "warning")  # no idle timeout: the finding ends it
    assert result.exit_code == 1
    assert "--exit-on warning: nonfinite-loss" in result.output


def test_a_healthy_log_exits_0_when_it_goes_quiet(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(HEALTHY_LOG)
    result = watch(log, "--idle-timeout", "0.3")
    assert result.exit_code == 0, result.output
    assert "no new log data for 0.3s: 5 records to step 5; no findings" in result.output


def test_bad_input_is_a_clear_error_with_exit_code_2(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(HEALTHY_LOG)
    cases = [
        ((tmp_path / "missing",), "no such file"),
        ((log, "--after-checkpoint"), "give --kill-pid"),
        ((log, "--kill-pid", "1"), "process id of the training run"),
        ((log, "--policy", "no-such-id=warn"), "no-such-id"),
    ]
    for args, message in cases:
        result = watch(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output.replace("\n", " ")


def test_a_pipe_is_read_to_its_end_without_torch(tmp_path):
    code = (
        "import sys\n"
        "from distill_doctor.cli import main\n"
        "sys.argv = ['doctor', 'watch', '-']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as end:\n"
        "    loaded = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "    print('loaded', loaded, 'exit', end.code)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], input=NAN_LOG, capture_output=True, text=True, env=env
    )
    assert "loaded [] exit 1" in out.stdout, out.stdout + out.stderr
    assert "the stream ended: 6 records to step 6" in out.stdout
