"""The postmortem report for a person: a one-screen verdict first, then the timeline of
findings (step, id, severity, message, evidence, fix), then the diagnosis chains and what the
parsers skipped."""

from __future__ import annotations

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from distill_doctor.findings import Finding
from distill_doctor.postmortem.coverage import judged_series
from distill_doctor.postmortem.report import Report, step_label
from distill_doctor.render.sparkline import sparklines

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_VERDICT = {"healthy": "bold green", "sick": "bold red", "no-data": "bold yellow"}
MAX_TIMELINE = 50  # a run with thousands of findings still fits a screen or two
MAX_SERIES_NAMED = 5  # "healthy on loss, lr, grad_norm, ...": the main series, not 40 columns


def _evidence(finding: Finding) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in finding.evidence.items()
    )


def _verdict(report: Report) -> Panel:
    analysis = report.analysis
    verdict = report.verdict.upper()
    if report.verdict == "healthy":
        verdict += f" on {_judged_on(report)}"
    lines = [Text(f"verdict: {verdict}", style=_VERDICT[report.verdict])]
    counts: dict[str, int] = {}
    for finding in report.timeline:
        counts[finding.severity.value] = counts.get(finding.severity.value, 0) + 1
    plural = {1: ""}
    tally = ", ".join(f"{n} {sev}{plural.get(n, 's')}" for sev, n in counts.items())
    tally = tally or "no findings"
    lines.append(Text(f"{_records(analysis.records)} up to step {analysis.last_step}; {tally}"))
    if report.verdict == "no-data":
        lines.append(
            Text(
                "The logs hold too few metrics to judge (an empty log_history, a log cut off "
                "at its start, or a file that only mentions numbers)."
            )
        )
    if report.first_problem is not None:
        first = report.first_problem
        lines.append(
            Text(
                f"first problem: {step_label(first.step)}: [{first.id}] {first.message}",
                style=_STYLE[first.severity.value],
            )
        )
    for chain in report.chains[:1]:
        lines.append(Text(f"=> {chain.diagnosis}", style="bold"))
    if report.verdict != "no-data":
        lines += _coverage(report)
    return Panel(Group(*lines), title=Text("doctor postmortem"), expand=False)


def _judged_on(report: Report) -> str:
    series = judged_series(report.analysis.series)
    named = [f"{key} ({points:,} points)" for key, points in series[:MAX_SERIES_NAMED]]
    more = len(series) - MAX_SERIES_NAMED
    return ", ".join(named) + (f" and {more} more series" if more > 0 else "")


def _coverage(report: Report) -> list[Text]:
    """Which checks ran and which were skipped, the skipped grouped by reason."""
    ran = sum(check.ran for check in report.checks)
    lines = [Text(f"checks: {ran} of {len(report.checks)} ran", style="dim")]
    by_reason: dict[str, list[str]] = {}
    for check in report.checks:
        if not check.ran:
            by_reason.setdefault(check.detail, []).append(check.id)
    for reason, ids in by_reason.items():
        lines.append(Text(f"  skipped {', '.join(ids)}: {reason}", style="dim"))
    return lines


def _curves(report: Report) -> Group | None:
    drawn = sparklines(report.analysis.curves.series, report.timeline)
    if drawn is None:
        return None
    (first, last), lines, marks = drawn
    name_width = max(len(line.name) for line in lines) if lines else 0
    rows = [
        Text(
            f"curves, steps {first:,} to {last:,} (x NaN/Inf; findings: ! error, ^ warning)",
            style="bold underline",
        )
    ]
    for line in lines:
        rows.append(Text(f"  {line.name:<{name_width}}  {line.line}  {line.summary}"))
    if marks.strip():
        rows.append(Text(f"  {'findings':<{name_width}}  {marks}", style="yellow"))
    return Group(*rows)


def _timeline(report: Report) -> Table:
    table = Table(title=Text("timeline", style="table.title"), show_lines=True, expand=True)
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("what, evidence, fix", ratio=1, overflow="fold")
    for finding in report.timeline[:MAX_TIMELINE]:
        sev = finding.severity.value
        details = Text(finding.message)
        if finding.evidence:
            details.append(f"\nevidence: {_evidence(finding)}", style="dim")
        if finding.fix:
            details.append(f"\nfix: {finding.fix}", style="green")
        when = step_label(finding.step, short=True)
        table.add_row(when, Text(sev, style=_STYLE[sev]), finding.id, details)
    return table


def _indented(text: str, style: str = "") -> Padding:
    return Padding(
        Text(text, style=style), (0, 0, 0, 4), expand=False
    )  # wrapped lines keep the indent


def _chains(report: Report) -> Group:
    lines: list[Text | Padding] = [Text("symptom -> diagnosis -> fix", style="bold underline")]
    for chain in report.chains:
        lines += [
            Text(f"* {chain.symptom}", style="bold"),
            _indented(f"-> {chain.diagnosis}"),
            _indented(f"-> fix: {chain.fix}", style="green"),
        ]
    return Group(*lines)


def _records(count: int) -> str:
    return f"{count:,} record" + ("" if count == 1 else "s")


def _sources(report: Report) -> Group:
    lines = [Text("sources", style="bold underline")]
    for source in report.analysis.sources:
        logged = source.logged_findings
        held = f", {logged:,} logged finding" + ("" if logged == 1 else "s") if logged else ""
        lines.append(Text(f"{source.path} ({source.format}): {_records(source.records)}{held}"))
        skipped = source.skipped
        if skipped.lines:
            reasons = "; ".join(f"{n:,} {why}" for why, n in skipped.reasons.most_common(4))
            what = f"skipped {skipped.lines:,} lines / {skipped.bytes:,} bytes: {reasons}"
            lines.append(_indented(what, style="dim"))
    return Group(*lines)


def print_report(report: Report, console: Console) -> None:
    console.print(_verdict(report))
    curves = _curves(report)
    if curves is not None:
        console.print(curves)
    if report.timeline:
        console.print(_timeline(report))
        hidden = len(report.timeline) - MAX_TIMELINE
        if hidden > 0:
            console.print(f"... and {hidden} more findings (use --format json for all).")
    if report.chains:
        console.print(_chains(report))
    console.print(_sources(report))
