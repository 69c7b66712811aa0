"""The Watchdog core: once per problem, policy, resume, crash safety; the live checks."""

from __future__ import annotations

import json
import math
import sys

import pytest

from distill_doctor.errors import InputError
from distill_doctor.findings import Finding, Severity
from distill_doctor.watchdog import checks
from distill_doctor.watchdog.core import Watchdog
from distill_doctor.watchdog.policy import Action, Policy, build_policy


class Stop:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def request_stop(self, reason: str) -> None:
        self.reasons.append(reason)


class Sink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.actions: list[dict] = []

    def on_finding(self, finding: Finding, action: Action) -> None:
        self.seen.append((finding.id, action.value))

    def on_action(self, event: dict) -> None:
        self.actions.append(event)


def nan_stream(nan_at: int, steps: int = 40) -> list[dict]:
    return [
        {"step": s, "lr": 1e-4, "loss": math.nan if s == nan_at else 5.0 - s * 0.01}
        for s in range(1, steps)
    ]


def test_abort_policy_stops_once_and_tells_the_sinks():
    sink, stop = Sink(), Stop()
    watchdog = Watchdog(policy=Policy(on_error=Action.ABORT), sinks=[sink])
    watchdog.stopper = stop
    for record in nan_stream(12):
        watchdog.observe(record)
    assert sink.seen == [("nonfinite-loss", "abort")]
    assert stop.reasons == ["watchdog: nonfinite-loss"]
    assert sink.actions[0]["finding"] == "nonfinite-loss" and sink.actions[0]["step"] == 12


def test_warn_policy_never_stops():
    stop = Stop()
    watchdog = Watchdog(policy=Policy(on_error=Action.WARN))
    watchdog.stopper = stop
    for record in nan_stream(12):
        watchdog.observe(record)
    assert [f.id for f in watchdog.findings] == ["nonfinite-loss"] and stop.reasons == []


def test_one_nan_does_not_poison_the_rolling_statistics():
    watchdog = Watchdog()
    for record in nan_stream(20, steps=400):
        watchdog.observe(record)
    watchdog.finish()
    assert [f.id for f in watchdog.findings] == ["nonfinite-loss"]


def test_probe_and_stream_findings_of_one_problem_are_said_once():
    watchdog = Watchdog()
    probe = checks.optimizer_coverage(10, 10, 1.0, 0, step=0)
    watchdog.report([probe])
    frozen = [{"step": s, "lr": 1e-3, "checksum": 42.0} for s in range(1, 10)]
    for record in frozen:
        watchdog.observe(record)
    assert [f.id for f in watchdog.findings] == ["params-frozen"]


def test_a_probe_rechecked_every_step_is_said_once():
    watchdog = Watchdog()
    for step in range(2, 12):
        watchdog.report([checks.scheduler_call_ratio(step, 16 * step, step, 48)])
    assert [(f.id, f.step) for f in watchdog.findings] == [("scheduler-stepped-per-microbatch", 2)]


def test_state_dict_round_trips_through_json_and_says_nothing_twice():
    def frozen(steps):
        return [{"step": s, "lr": 1e-3, "loss": 9 - s / 10, "checksum": 42.0} for s in steps]

    first = Watchdog()
    for record in frozen(range(1, 21)):
        first.observe(record)
    assert [(f.id, f.step) for f in first.findings] == [("params-frozen", 2)]
    state = json.loads(json.dumps(first.state_dict()))
    resumed, forgetful = Watchdog(), Watchdog()
    resumed.load_state_dict(state)
    for record in frozen(range(21, 41)):  # the same episode goes on after the resume
        resumed.observe(record)
        forgetful.observe(record)
    assert [(f.id, f.step) for f in resumed.findings] == [("params-frozen", 2)]
    assert [f.id for f in forgetful.findings] == ["params-frozen"]  # what replay prevents


def test_a_crashing_detector_is_switched_off_and_reported_once():
    watchdog = Watchdog()

    class Broken:
        DOC = checks.WATCHDOG_ERROR

        def update(self, record):
            raise ValueError("bad")

        def finish(self):
            return []

    watchdog.suite.detectors.append(Broken())
    for record in nan_stream(99, steps=10):
        watchdog.observe(record)
    errors = [f for f in watchdog.findings if f.id == "watchdog-error"]
    assert len(errors) == 1 and "ValueError: bad" in errors[0].message


def test_policy_table_flags_config_and_defaults():
    policy = build_policy("abort", ["loss-spike=warn", "DD202=ignore"], {"lr-zero": "warn"})
    assert policy.per_id == {
        "lr-zero": Action.WARN,
        "loss-spike": Action.WARN,
        "nonfinite-loss": Action.IGNORE,
    }
    assert policy.action_for("eval-frozen", Severity.ERROR) is Action.ABORT
    assert policy.action_for("eval-frozen", Severity.WARNING) is Action.WARN
    with pytest.raises(InputError, match="Did you mean"):
        build_policy("abort", ["los-spike=warn"])
    with pytest.raises(InputError, match="no repair"):
        build_policy("abort", ["eval-frozen=adjust"])
    assert build_policy("abort", ["lr-zero=adjust"]).per_id == {"lr-zero": Action.ADJUST}
    with pytest.raises(InputError, match="abort, adjust or warn"):
        build_policy("ignore")
    adjusting = build_policy("adjust")
    assert adjusting.action_for("all-labels-masked", Severity.WARNING) is Action.ADJUST
    assert adjusting.action_for("kd-temperature-range", Severity.WARNING) is Action.WARN


def test_dry_run_predicts_lr_zero_and_a_schedule_that_never_ends():
    too_few = [1e-3 * max(0.0, 1 - s / 25) for s in range(100)]
    [zero] = checks.planned_schedule(too_few, 100)
    assert zero.id == "lr-zero" and zero.evidence["zero_at_step"] == 26
    too_long = [1e-3 * (1 - s / 1600) for s in range(100)]
    [long] = checks.planned_schedule(too_long, 100)
    assert long.id == "scheduler-steps-mismatch" and long.severity is Severity.ERROR
    assert 1500 < long.evidence["schedule_ends_near_step"] < 1700
    right = [1e-3 * (1 - s / 100) for s in range(100)]
    constant = [1e-3] * 100
    assert checks.planned_schedule(right, 100) == checks.planned_schedule(constant, 100) == []


def test_scheduler_call_ratio():
    [found] = [checks.scheduler_call_ratio(2, 32, 2, 4800)]
    assert found.id == "scheduler-stepped-per-microbatch"
    assert found.evidence["ratio"] == 16 and found.evidence["schedule_ends_at_step"] == 300
    assert checks.scheduler_call_ratio(10, 11, 10, 100) is None  # one extra call is no pattern
    assert checks.scheduler_call_ratio(1, 16, 1, 100) is None  # too early to judge


def test_watchdog_core_and_checks_load_no_torch():
    import subprocess

    code = (
        "import sys, distill_doctor.watchdog.core, distill_doctor.watchdog.checks;"
        "import distill_doctor.registry as r; r.all_docs();"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
