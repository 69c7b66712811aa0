"""`--plot`: loss, eval loss, LR and grad-norm curves with the findings marked, as a PNG or a
self-contained HTML page (inline SVG plus the findings). matplotlib is imported here only,
with the Agg backend: no display needed. The curves are the analysis' bounded series."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from distill_doctor import records as R
from distill_doctor.errors import InputError
from distill_doctor.postmortem.report import Report, step_label

_COLOURS = {"error": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}
_PANELS = (
    ("loss", ((R.LOSS, "train loss", "#1f77b4"), (R.EVAL_LOSS, "eval loss", "#2ca02c"))),
    ("learning rate", ((R.LR, "lr", "#9467bd"),)),
    ("grad norm", ((R.GRAD_NORM, "grad norm", "#8c564b"),)),
)


def _figure(report: Report) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    series = report.analysis.curves.series
    panels = [
        (title, lines)
        for title, lines in _PANELS
        if any(series[key].buckets or series[key].nonfinite_steps for key, _, _ in lines)
    ]
    figure = Figure(figsize=(10, 2.6 * max(1, len(panels)) + 0.6), dpi=90)
    axes = figure.subplots(max(1, len(panels)), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, lines) in zip(axes, panels, strict=False):
        for key, label, colour in lines:
            _draw_series(ax, series[key], label, colour)
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    _mark_findings(axes, report)
    axes[-1].set_xlabel("optimizer step")
    figure.suptitle(_title(report), fontsize=11)
    figure.tight_layout()
    return figure


def _title(report: Report) -> str:
    first = report.first_problem
    if first is None:
        return f"doctor postmortem: {report.verdict}"
    return (
        f"doctor postmortem: {report.verdict}; first problem: {step_label(first.step)}: {first.id}"
    )


def _draw_series(ax: Any, series: Any, label: str, colour: str) -> None:
    points = series.points()
    if points:
        steps, values = zip(*points, strict=True)
        ax.plot(
            steps,
            values,
            color=colour,
            linewidth=1.2,
            label=label,
            marker="o" if len(points) < 40 else None,
            markersize=3,
        )
    if series.nonfinite_steps:
        ax.plot(
            series.nonfinite_steps,
            [0] * len(series.nonfinite_steps),
            "x",
            color="#c62828",
            transform=ax.get_xaxis_transform(),
            label=f"{label}: NaN/Inf",
            clip_on=False,
        )


def _mark_findings(axes: Any, report: Report) -> None:
    """A dashed line at the first step of each finding id; ids sharing a step share a label
    (one column of rotated text each)."""
    at_step: dict[int, list[str]] = {}
    colour_at: dict[int, str] = {}
    for finding in report.timeline:  # by step, worst first within a step
        if finding.step is None or any(finding.id in ids for ids in at_step.values()):
            continue
        at_step.setdefault(finding.step, []).append(finding.id)
        colour_at.setdefault(finding.step, _COLOURS[finding.severity.value])
    for step, ids in at_step.items():
        for ax in axes:
            ax.axvline(step, color=colour_at[step], linestyle="--", linewidth=1)
        axes[0].annotate(
            "\n".join(ids),  # rotated: one column of text per id
            (step, 0.98),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
            color=colour_at[step],
        )


def _html(report: Report, svg: str) -> str:
    rows = "".join(
        f"<tr><td>{step_label(f.step, short=True)}</td><td>{f.severity.value}</td>"
        f"<td>{html.escape(f.id)}</td>"
        f"<td>{html.escape(f.message)}</td><td>{html.escape(f.fix)}</td></tr>"
        for f in report.timeline
    )
    chains = "".join(
        f"<li><b>{html.escape(c.symptom)}</b>: {html.escape(c.diagnosis)}</li>"
        for c in report.chains
    )
    findings = (
        "<table><tr><th>step</th><th>severity</th><th>id</th><th>message</th><th>fix</th></tr>"
        f"{rows}</table>"
        if rows
        else f"<p>No findings: no detector fired on {report.analysis.records:,} records.</p>"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>doctor postmortem</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;"
        "padding:4px}table{border-collapse:collapse}</style></head><body>"
        f"<h1>verdict: {report.verdict}</h1>{svg}<ul>{chains}</ul>{findings}</body></html>"
    )


def write_plot(report: Report, path: Path) -> None:
    """Write `path` (.png or .html); an unwritable path is an InputError."""
    figure = _figure(report)
    try:
        if path.suffix.lower() == ".html":
            buffer = io.StringIO()
            figure.savefig(buffer, format="svg")
            svg = buffer.getvalue()
            path.write_text(_html(report, svg[svg.find("<svg") :]), encoding="utf-8")
        else:
            figure.savefig(path, format="png")
    except OSError as err:
        raise InputError(f"--plot {path}: cannot write the file ({err.strerror}).") from None
