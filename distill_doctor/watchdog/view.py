"""What the user sees while a watched run trains.

`LiveView` (stdout is a terminal): one Rich panel redrawn at most 4 times a second: the LR with
a sparkline of the schedule so far and the planned rest, the loss and its components with
their change, eval history, grad norm, how far the weights moved, memory (and what measured
it), speed and ETA, and the findings. `PlainView` (a pipe, a log file): one line per logging
step, per eval and per finding, so that `doctor train --watch | tee log` reads well.
Both are observers of the trainer and sinks of the watchdog; neither changes anything.
`doctor watch` drives them from a run's logs: the plan may be unknown (no `/planned` then),
the history read before going live is not printed line by line, and each finding shows its
evidence.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from distill_doctor import records as keys
from distill_doctor.findings import Finding, Severity
from distill_doctor.watchdog.policy import Action

BLOCKS = "▁▂▃▄▅▆▇█"
REFRESH_SECONDS = 0.25  # at most 4 redraws a second
SPARK_WIDTH = 48
COMPONENTS = ("loss_ce", "loss_kd", "loss_feature", "loss_attention")
SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}


def sparkline(values: list[float], width: int = SPARK_WIDTH, top: float | None = None) -> str:
    """`values` squeezed to `width` bars (means of equal slices), 0 at the bottom."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    top = top if top is not None else max(finite)
    if len(values) > width:
        size = len(values) / width
        values = [
            _mean(values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
            for i in range(width)
        ]
    return "".join(
        " "
        if not math.isfinite(v)
        else BLOCKS[min(7, int(8 * max(v, 0) / top))]
        if top > 0
        else BLOCKS[0]
        for v in values
    )


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, spec)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def finding_line(finding: Finding, action: Action) -> str:
    at = "before training" if not finding.step else f"step {finding.step}"
    return f"[{finding.severity.value}] {finding.id} ({at}, {action.value}): {finding.message}"


def evidence_line(finding: Finding) -> str:
    if not finding.evidence:
        return ""
    return "evidence: " + ", ".join(f"{k}={v}" for k, v in finding.evidence.items())


def step_text(step: Any, planned: int) -> str:
    return f"{step}/{planned}" if planned else str(step)


def action_line(event: dict[str, Any]) -> str:
    """`adjust lr-zero at step 2: lr 0.00109 -> 0.00111 (what it did)`."""
    changed = ", ".join(
        f"{key} {event['before'].get(key)} -> {value}"
        for key, value in event.get("after", {}).items()
        if key in event.get("before", {})
    )
    what = event.get("what") or event.get("reason", "")
    return (
        f"{event['action']} {event['finding']} at step {event.get('step')}"
        + (f": {changed}" if changed else "")
        + (f" ({what})" if what else "")
    )


def print_run_start(console: Console, info: dict[str, Any]) -> None:
    """The scheduler line and the pre-flight's findings, before step 1."""
    console.print(info["scheduler_line"])
    for finding in info.get("preflight", []):
        console.print(
            f"[Check] {finding.severity.value} {finding.code} {finding.id}: {finding.message}",
            markup=False,
        )


class FindingLines:
    """Without --watch: each finding as one line, as soon as a detector says it."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def on_finding(self, finding: Finding, action: Action) -> None:
        line = Text("[Doctor] " + finding_line(finding, action))
        self.console.print(line, style=SEVERITY_STYLE[finding.severity])

    def on_action(self, event: dict[str, Any]) -> None:
        self.console.print(Text("[Doctor] " + action_line(event), style="bold magenta"))

    def on_run_start(self, info: dict[str, Any], control: Any) -> None: ...

    def on_record(self, record: dict[str, Any]) -> None: ...

    def on_eval(self, record: dict[str, Any]) -> None: ...

    def on_run_end(self, status: str) -> None: ...


class RunState:
    """The numbers both views show, updated from the trainer's hooks."""

    def __init__(self) -> None:
        self.planned = 0
        self.start_step = 0
        self.started = time.perf_counter()
        self.lrs: list[float] = []
        self.planned_lrs: list[float] = []
        self.last: dict[str, Any] = {}
        self.previous: dict[str, Any] = {}
        self.losses: deque[float] = deque(maxlen=400)
        self.evals: list[tuple[int, float]] = []
        self.findings: list[tuple[Finding, Action]] = []
        self.actions: list[str] = []
        self.memory_source = ""

    def start(self, info: dict[str, Any]) -> None:
        self.planned = info["planned_steps"]
        self.rebase(info.get("resumed_from_step") or 0)

    def rebase(self, step: int) -> None:
        """Count speed and ETA from here (a resume; a watch that has read a log's history)."""
        self.start_step = step
        self.started = time.perf_counter()

    def record(self, record: dict[str, Any]) -> None:
        self.previous, self.last = self.last, record
        self.lrs.append(record.get(keys.LR, math.nan))
        self.losses.append(record.get(keys.LOSS, math.nan))

    def eta_seconds(self) -> float | None:
        done = self.last.get(keys.STEP, 0) - self.start_step
        if done <= 0 or not self.planned:
            return None
        rate = done / (time.perf_counter() - self.started)
        return (self.planned - self.last.get(keys.STEP, 0)) / rate


class PlainView:
    """Lines for a pipe or a log file: every `logging_steps` steps, every eval, every finding
    (`evidence`: with its evidence)."""

    def __init__(self, console: Console, logging_steps: int, evidence: bool = False) -> None:
        self.console = console
        self.every = logging_steps
        self.evidence = evidence
        self.state = RunState()

    def on_run_start(self, info: dict[str, Any], control: Any) -> None:
        self.state.start(info)
        print_run_start(self.console, info)

    def on_record(self, record: dict[str, Any], show: bool = True) -> None:
        """`show` False: a record of the history, kept in the state but not printed."""
        self.state.record(record)
        step = record[keys.STEP]
        if not show or (step != 1 and step % self.every and step != self.state.planned):
            return
        parts = [f"step {step_text(step, self.state.planned)}"]
        parts.append(f"lr {fmt(record.get(keys.LR), '.3e')}")
        parts.append(f"loss {fmt(record.get(keys.LOSS))}")
        parts += [f"{k[5:]} {fmt(record[k])}" for k in COMPONENTS if k in record]
        parts.append(f"grad_norm {fmt(record.get(keys.GRAD_NORM))}")
        if "update_ratio" in record:
            parts.append(f"update/weight {fmt(record['update_ratio'], '.2e')}")
        for key in (keys.MEM_ALLOCATED, keys.MEM_RSS):
            if key in record:
                parts.append(f"{'rss' if key == keys.MEM_RSS else 'alloc'} {gib(record[key])}")
        parts.append(f"{fmt(record.get(keys.STEPS_PER_S), '.2f')} it/s")
        self.console.print("[Watch] " + " · ".join(parts))

    def on_eval(self, record: dict[str, Any]) -> None:
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in record.items() if k != keys.STEP and isinstance(v, float)
        )
        self.console.print(f"[Eval] step {record[keys.STEP]}: {shown}", markup=False)

    def on_finding(self, finding: Finding, action: Action) -> None:
        self.console.print(
            Text(
                "[Doctor] " + finding_line(finding, action), style=SEVERITY_STYLE[finding.severity]
            )
        )
        if self.evidence:
            seen = self.state.last.get(keys.STEP)
            said = f"said at step {seen}" if seen is not None and seen != finding.step else ""
            self.console.print(
                Text("  " + " · ".join(filter(None, [evidence_line(finding), said])))
            )

    def on_action(self, event: dict[str, Any]) -> None:
        self.console.print(Text("[Doctor] " + action_line(event), style="bold magenta"))

    def set_planned_lrs(self, lrs: list[float], memory_source: str) -> None:
        self.state.planned_lrs = lrs
        self.state.memory_source = memory_source

    def on_run_end(self, status: str) -> None:
        pass


class LiveView(PlainView):
    """The Rich panel for a terminal (redrawn at most every REFRESH_SECONDS)."""

    def __init__(self, console: Console, logging_steps: int, evidence: bool = False) -> None:
        super().__init__(console, logging_steps, evidence)
        self.live = Live(console=console, auto_refresh=False, transient=False)
        self.drawn = 0.0

    def on_run_start(self, info: dict[str, Any], control: Any) -> None:
        self.state.start(info)
        print_run_start(self.console, info)
        self.live.start()
        self._draw(force=True)

    def on_record(self, record: dict[str, Any], show: bool = True) -> None:
        self.state.record(record)
        self._draw()

    def on_eval(self, record: dict[str, Any]) -> None:
        if keys.EVAL_LOSS in record:
            self.state.evals.append((record[keys.STEP], record[keys.EVAL_LOSS]))
        self._draw(force=True)

    def on_finding(self, finding: Finding, action: Action) -> None:
        self.state.findings.append((finding, action))
        self._draw(force=True)

    def on_action(self, event: dict[str, Any]) -> None:
        self.state.actions.append(action_line(event))
        self._draw(force=True)

    def on_run_end(self, status: str) -> None:
        self._draw(force=True)
        self.live.stop()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.drawn < REFRESH_SECONDS:
            return
        self.drawn = now
        self.live.update(self.render(), refresh=True)

    def render(self) -> Panel:
        s, r = self.state, self.state.last
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        step = r.get(keys.STEP, s.start_step)
        eta = s.eta_seconds()
        speed = f"{fmt(r.get(keys.STEPS_PER_S), '.2f')} it/s"
        grid.add_row(
            "step",
            f"{step_text(step, s.planned)} · {speed}"
            + (f" · ETA {eta:,.0f}s" if eta is not None else ""),
        )
        peak = max([v for v in s.lrs + s.planned_lrs if math.isfinite(v)] or [0.0])
        done = len(s.lrs)
        rest = s.planned_lrs[done:] if len(s.planned_lrs) > done else []
        width_done = max(1, round(SPARK_WIDTH * done / max(done + len(rest), 1)))
        lr_line = Text(sparkline(s.lrs, width_done, peak), style="cyan")
        lr_line.append(sparkline(rest, SPARK_WIDTH - width_done, peak) if rest else "", style="dim")
        grid.add_row("lr", Text(f"{fmt(r.get(keys.LR), '.3e')}  ").append_text(lr_line))
        grid.add_row("loss", self._with_delta(keys.LOSS) + "  " + sparkline(list(s.losses)))
        parts = [f"{k[5:]} {self._with_delta(k)}" for k in COMPONENTS if k in r]
        if parts:
            grid.add_row("parts", " · ".join(parts))
        if s.evals:
            grid.add_row("eval", " → ".join(f"{v:.4g}@{st}" for st, v in s.evals[-5:]))
        grid.add_row("grad norm", self._with_delta(keys.GRAD_NORM))
        moved = r.get("update_ratio")
        grid.add_row(
            "weights",
            f"update/weight {fmt(moved, '.2e')} · checksum {fmt(r.get(keys.CHECKSUM), '.10g')}",
        )
        grid.add_row("memory", self._memory())
        findings = Table.grid()
        for finding, action in s.findings[-6:]:
            line = Text(finding_line(finding, action), style=SEVERITY_STYLE[finding.severity])
            if self.evidence and finding.evidence:
                line.append(" · " + evidence_line(finding), style="dim")
            findings.add_row(line)
        for line in s.actions[-3:]:
            findings.add_row(Text(line, style="bold magenta"))
        if not s.findings:
            findings.add_row(Text("no findings so far", style="green"))
        return Panel(Group(grid, findings), title="distill_doctor watch", border_style="blue")

    def _with_delta(self, key: str) -> str:
        now, before = self.state.last.get(key), self.state.previous.get(key)
        if now is None:
            return "-"
        if isinstance(before, (int, float)) and isinstance(now, (int, float)):
            return f"{fmt(now)} ({now - before:+.3g})"
        return fmt(now)

    def _memory(self) -> str:
        r = self.state.last
        if keys.MEM_RSS in r:
            return f"{gib(r[keys.MEM_RSS])} resident ({self.state.memory_source or 'process RSS'})"
        used, total = r.get(keys.MEM_USED), r.get(keys.MEM_TOTAL)
        if used is None or not total:
            return "-"
        share = used / total
        bar = "█" * round(20 * share) + "░" * (20 - round(20 * share))
        alloc = r.get(keys.MEM_ALLOCATED)
        extra = f" · torch allocated {gib(alloc)}" if alloc is not None else ""
        return f"{bar} {gib(used)} / {gib(total)} ({share:.0%}, {self.state.memory_source}){extra}"
