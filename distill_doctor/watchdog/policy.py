"""What the watchdog does with a finding: the policy table.

`--on-error abort|warn` sets what an error-severity finding does; warnings warn and notes are
only logged, unless `--policy ID=ACTION` (or the config's `watchdog_policy`) says otherwise for
one id. `adjust` (repair the run in place) is accepted only for ids that have a registered
repair, so that a policy can never promise a rescue the watchdog cannot make.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from distill_doctor.errors import InputError
from distill_doctor.findings import Finding, Severity


class Action(str, Enum):
    ABORT = "abort"  # finish the step, save a checkpoint, stop with EXIT_WATCHDOG_ABORT
    ADJUST = "adjust"  # repair the run in place (ids with a registered repair only)
    WARN = "warn"  # show and log the finding; training goes on
    IGNORE = "ignore"  # log it in events.jsonl only


# Distinct from 0/1/2 (findings, input errors) and 130/143 (signals): scripts can tell a run
# the watchdog stopped from one that crashed or was interrupted.
EXIT_WATCHDOG_ABORT = 3

# Finding ids with a repair (`watchdog.repairs` makes them); `adjust` for any other id is
# refused with a clear message rather than silently downgraded.
SCHEDULE_IDS = ("scheduler-stepped-per-microbatch", "scheduler-steps-mismatch", "lr-zero")
SKIP_IDS = ("nonfinite-loss", "grad-nonfinite", "all-labels-masked")
ROLLBACK_IDS = ("loss-spike", "loss-divergence")
MEMORY_IDS = ("memory-growth", "memory-pressure")
REPAIRABLE = frozenset(SCHEDULE_IDS + SKIP_IDS + ROLLBACK_IDS + MEMORY_IDS)


@dataclass
class Policy:
    on_error: Action = Action.WARN
    per_id: dict[str, Action] = field(default_factory=dict)

    def decide(self, finding: Finding) -> Action:
        return self.action_for(finding.id, finding.severity)

    def action_for(self, finding_id: str, severity: Severity) -> Action:
        if finding_id in self.per_id:
            return self.per_id[finding_id]
        if severity is Severity.ERROR:
            return self.on_error
        if severity is Severity.WARNING:
            # With `--on-error adjust`, a warning that has a repair (one masked batch, a loss
            # spike) is repaired too: the cheap fix before it becomes an error.
            repair = self.on_error is Action.ADJUST and finding_id in REPAIRABLE
            return Action.ADJUST if repair else Action.WARN
        return Action.IGNORE

    def to_dict(self) -> dict[str, object]:
        return {
            "on_error": self.on_error.value,
            "per_id": {k: v.value for k, v in self.per_id.items()},
        }


def parse_action(text: str, where: str) -> Action:
    try:
        return Action(text.strip().lower())
    except ValueError:
        choices = ", ".join(a.value for a in Action)
        raise InputError(f"{where}: {text!r} is not an action; use one of {choices}.") from None


def build_policy(
    on_error: str, policy_items: Iterable[str] = (), config_policy: Mapping[str, str] | None = None
) -> Policy:
    """The table from `--on-error`, the config's `watchdog_policy` and `--policy ID=ACTION`
    (flags win over the config). Unknown ids get the registry's did-you-mean."""
    from distill_doctor.registry import lookup  # lazy: loads every rule's doc

    per_id: dict[str, Action] = {}
    raw = [(k, v, "watchdog_policy") for k, v in (config_policy or {}).items()]
    for item in policy_items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(
                f"--policy {item!r}: expected ID=ACTION, e.g. --policy loss-spike=warn."
            )
        raw.append((key, value, f"--policy {item}"))
    for key, value, where in raw:
        finding_id = lookup(key.strip()).id  # an unknown id: InputError with suggestions
        action = parse_action(value, where)
        if action is Action.ADJUST and finding_id not in REPAIRABLE:
            raise InputError(
                f"{where}: the watchdog has no repair for {finding_id} yet; use abort, warn or "
                "ignore."
            )
        per_id[finding_id] = action
    main = parse_action(on_error, "--on-error")
    if main is Action.IGNORE:
        raise InputError("--on-error: use abort, adjust or warn (per-id actions go in --policy).")
    return Policy(on_error=main, per_id=per_id)
