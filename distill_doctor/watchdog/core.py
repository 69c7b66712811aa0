"""`Watchdog`: the framework-free core of the live doctor.

Fed one `Record` per optimizer step (and one per eval), it runs the same stream detectors as
`doctor postmortem`, takes findings from the live probes (`report`), says each finding once,
decides what to do with it (`Policy`) and fans it out to its sinks. Adapters (the bundled
trainer's observer, `DoctorCallback`) feed it and carry out a stop; the core never touches a
model and never imports torch.

A crash inside a detector never reaches the training loop: the detector is switched off and
reported once as `watchdog-error`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from distill_doctor.detectors import MAX_SHAPES, DetectorSuite, RunFacts, watches
from distill_doctor.findings import Finding
from distill_doctor.records import STEP, Record
from distill_doctor.watchdog import checks
from distill_doctor.watchdog.policy import Action, Policy

# Records kept for a resume: replayed into fresh detectors, they restore the windows and
# streaks (all bounded far below this) without saying their findings again.
HISTORY = 512


class Stopper(Protocol):
    def request_stop(self, reason: str) -> None: ...


class WatchdogSink(Protocol):
    """What the watchdog tells its sinks (each method optional on a sink)."""

    def on_finding(self, finding: Finding, action: Action) -> None: ...


def finding_key(finding: Finding) -> str:
    return f"{finding.id}@{finding.step}"


def abort_event(finding: Finding, step: int | None) -> dict[str, Any]:
    """The `action` event of an abort (events.jsonl, TensorBoard text, the views)."""
    return {
        "action": Action.ABORT.value,
        "finding": finding.id,
        "step": step,
        "before": {"status": "training"},
        "after": {"status": "stopped", "checkpoint": "saved at the end of this step"},
        "reason": finding.message,
    }


class Watchdog:
    def __init__(
        self,
        facts: RunFacts | None = None,
        policy: Policy | None = None,
        sinks: Iterable[Any] = (),
    ) -> None:
        self.facts = facts
        self.policy = policy or Policy()
        self.sinks = list(sinks)
        self.suite = DetectorSuite(facts)
        self._by_shape: dict[tuple[str, ...], list[Any]] = {}
        self.switched_off: set[Any] = set()  # detectors that crashed (reported once)
        self.findings: list[Finding] = []
        self.seen: set[str] = set()  # finding_key of everything said
        # Ids a probe or the pre-flight stated for the whole run: the stream's later finding
        # of the same problem (params-frozen at step 3 after the probe's step 0) is no news.
        self.standing: set[str] = set()
        self.history: deque[Record] = deque(maxlen=HISTORY)
        self.evals: deque[Record] = deque(maxlen=HISTORY)
        self.stopper: Stopper | None = None
        self.abort: Finding | None = None  # the finding that stopped the run
        self.last_step: int | None = None
        # Makes `adjust` happen: `repair(finding, step) -> action event | None` (None: no
        # repair possible, so the finding aborts). Given by the adapter that owns the run.
        self.repairer: Any = None
        self.saved_repairs: dict[str, Any] = {}  # a resumed run's repairs, for its adapter

    def set_facts(self, facts: RunFacts) -> None:
        """What the run knows about itself (planned steps, vocabulary, a combined loss), for
        the detectors that judge against it; given before the first record."""
        self.facts = facts
        self._replay()

    # --- feeding ----------------------------------------------------------------------------

    def observe(self, record: Record) -> list[Finding]:
        """One optimizer step's record; returns the findings it raised (new ones)."""
        self.history.append(record)
        self.last_step = record.get(STEP, self.last_step)
        return self.report(self._detect(record), source="stream")

    def observe_eval(self, record: Record) -> list[Finding]:
        self.evals.append(record)
        return self.report(self._detect(record), source="stream")

    def finish(self) -> list[Finding]:
        """The verdicts that need the whole run (at its end)."""
        found: list[Finding] = []
        for detector in self.suite.detectors:
            if detector not in self.switched_off:
                found.extend(self._guarded(detector, "finish", None))
        return self.report(found, source="stream")

    def _detect(self, record: Record) -> list[Finding]:
        found: list[Finding] = []
        shape = tuple(record)
        detectors = self._by_shape.get(shape)
        if detectors is None:  # the suite's rule: a record goes to the detectors watching it
            detectors = [d for d in self.suite.detectors if watches(d, shape)]
            if len(self._by_shape) < MAX_SHAPES:
                self._by_shape[shape] = detectors
        for detector in detectors:
            if detector in self.switched_off:
                continue
            found.extend(self._guarded(detector, "update", record))
        return found

    def _guarded(self, detector: Any, method: str, record: Record | None) -> list[Finding]:
        try:
            return detector.update(record) if method == "update" else detector.finish()
        except Exception as error:  # noqa: BLE001 - a broken check must not kill the run
            self.switched_off.add(detector)
            step = record.get(STEP) if record else self.last_step
            return [checks.watchdog_error(detector.DOC.id, error, step)]

    # --- findings ---------------------------------------------------------------------------

    def report(self, findings: Iterable[Finding], source: str = "probe") -> list[Finding]:
        """Say each new finding once and act on every one (a repeat after a resume still
        stops a run whose policy says abort). `source`: "probe" and "preflight" findings hold
        for the whole run; "stream" findings are per episode. Pre-flight findings are already
        shown and logged by the run-start sinks: they are only judged here."""
        new: list[Finding] = []
        for finding in findings:
            # A probe's or the pre-flight's finding holds for the whole run: the same id again
            # (a probe re-checked each step, the stream's later view of it) is no news.
            repeat = finding_key(finding) in self.seen or finding.id in self.standing
            action = self.policy.decide(finding)
            if action is Action.ADJUST and not repeat:
                action = self._repair(finding)
            if not repeat:
                self.seen.add(finding_key(finding))
                if source != "stream":
                    self.standing.add(finding.id)
                self.findings.append(finding)
                new.append(finding)
                if source != "preflight":
                    self._fan_out("on_finding", finding, action)
            if action is Action.ABORT and self.abort is None:
                self.abort = finding
                if self.stopper is not None:
                    self.stopper.request_stop(f"watchdog: {finding.id}")
                self._fan_out("on_action", abort_event(finding, self.last_step))
        return new

    def _repair(self, finding: Finding) -> Action:
        """Make the repair; its action event goes to the sinks. No repair possible (none for
        this run, the budget spent, a problem back after its repairs): abort instead."""
        step = finding.step if finding.step is not None else (self.last_step or 0)
        made = self.repairer.repair(finding, step) if self.repairer is not None else None
        if made is None:
            return Action.ABORT
        self._fan_out("on_action", made)
        return Action.ADJUST

    def probe(self, name: str, step: int | None, check: Any, *args: Any) -> Any:
        """Run one of an adapter's live probes; a crash becomes one `watchdog-error` finding
        (the probe's result is then None), never the end of the run it guards."""
        try:
            return check(*args)
        except Exception as error:  # noqa: BLE001 - the watchdog must not kill the run
            self.report([checks.watchdog_error(name, error, step)])
            return None

    def announce(self, event: dict[str, Any]) -> None:
        """An action an adapter took (a skipped step, a rollback) to every sink."""
        self._fan_out("on_action", event)

    def _fan_out(self, method: str, *args: Any) -> None:
        for sink in self.sinks:
            call = getattr(sink, method, None)
            if call is not None:
                call(*args)

    # --- resume -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe: what a resumed run needs to keep its history and say nothing twice."""
        repairs = self.repairer.state_dict() if self.repairer is not None else {}
        return {
            "repairs": repairs,
            "seen": sorted(self.seen),
            "standing": sorted(self.standing),
            "findings": [f.to_dict() for f in self.findings],
            "history": list(self.history),
            "evals": list(self.evals),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay the saved records into fresh detectors (their findings are already said)."""
        self.history.clear()
        self.evals.clear()
        self.history.extend(r for r in state.get("history", []) if isinstance(r, dict))
        self.evals.extend(r for r in state.get("evals", []) if isinstance(r, dict))
        self._replay()
        self.seen = set(state.get("seen", []))
        self.standing = set(state.get("standing", []))
        self.findings = [Finding.from_dict(f) for f in state.get("findings", [])]
        self.saved_repairs = dict(state.get("repairs") or {})
        self.abort = None

    def _replay(self) -> None:
        """Fresh detectors fed the kept records in step order, findings dropped."""
        self.suite = DetectorSuite(self.facts)
        self._by_shape = {}
        self.switched_off = set()
        merged = sorted(
            [(r.get(STEP, 0), 0, r) for r in self.history]
            + [(r.get(STEP, 0), 1, r) for r in self.evals],
            key=lambda item: (item[0], item[1]),
        )
        for _, _, record in merged:
            self._detect(record)
