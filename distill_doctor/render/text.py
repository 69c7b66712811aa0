"""`--format text`: findings for a person, grouped by severity, worst first.

Each finding shows its code, id and message, its evidence as a two-column table and its fix;
a summary line closes the report. Rendered to a string (the command prints it), with colour
only when asked, so that piping to a file or a CI log stays plain.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from distill_doctor.findings import EvidenceValue, Finding, Severity, sort_findings
from distill_doctor.registry import RuleDoc
from distill_doctor.render.summary import summary_line

if TYPE_CHECKING:  # the config package (pydantic) is only needed by `doctor check`
    from distill_doctor.config.fix import FixOutcome

STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "cyan"}
HEADINGS = {Severity.ERROR: "Errors", Severity.WARNING: "Warnings", Severity.INFO: "Info"}


def use_color() -> bool:
    """Colour for a terminal only; NO_COLOR (no-color.org) turns it off."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def terminal_width(cap: int = 100) -> int:
    """The width to render for: the terminal's (or $COLUMNS; 80 when piped), at most `cap`
    so that lines stay readable on a wide screen."""
    return min(shutil.get_terminal_size((80, 24)).columns, cap)


def make_console(color: bool, width: int) -> Console:
    return Console(
        file=io.StringIO(),
        width=width,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def captured(console: Console) -> str:
    """What a string-backed console printed, without Rich's padding to the full width."""
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.split("\n"))


def format_value(value: EvidenceValue) -> str:
    """Numbers as people read them: 75,000 not 75000, 0.0625 not 0.06250000001."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "none"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"
    return str(value)


def evidence_table(finding: Finding, room: int) -> RenderableType:
    """Key and value per row; numbers right-aligned among themselves so that digits line up,
    words left-aligned (a long list of names must not push the numbers to the margin).

    Rows that all fit in `room` columns are laid out here as lines, as the two-column table
    lays them out: Rich's Table measures and renders every cell apart (~2.5 ms a finding at a
    cold start). When one does not fit, the table wraps and shares out the room."""
    cells = {key: format_value(value) for key, value in finding.evidence.items()}
    numbers = {
        k
        for k, v in finding.evidence.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    width = max((len(cells[k]) for k in numbers), default=0)
    # Plain text: keys and values come from the user's config or log, where `[/]` is a
    # character, not Rich markup (as markup it vanished, or raised MarkupError).
    rows = [
        (Text(key), Text(cell.rjust(width) if key in numbers else cell))
        for key, cell in cells.items()
    ]
    key_width = max((widest_line(key) for key, _ in rows), default=0)
    value_width = max((widest_line(value) for _, value in rows), default=0)
    if key_width + COLUMN_GAP + value_width <= room and all(fits_as_is(v) for _, v in rows):
        return Text("\n").join(evidence_lines(key, value, key_width) for key, value in rows)
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, COLUMN_GAP, 0, 0))
    table.add_column("key", style="dim", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    return table


COLUMN_GAP = 2


def fits_as_is(value: Text) -> bool:
    """Printed line for line as it reads: no tab to expand, no trailing line break to keep."""
    plain = value.plain
    return "\t" not in plain and plain == "\n".join(plain.splitlines())


def evidence_lines(key: Text, value: Text, key_width: int) -> Text:
    """One row: the key dimmed and padded to its column, then the value's lines, each one
    under the first (styled in the same spans as the table's cells, so that a colour
    terminal gets the same bytes too)."""
    key = key.copy()
    key.pad_right(key_width - key.cell_len)
    key.stylize_before("dim")
    row = Text.assemble(key, (" " * COLUMN_GAP, "dim"))
    blank = Text(" " * (key_width + COLUMN_GAP), style="dim")
    lines = value.split("\n") if value.plain else [value]
    for number, line in enumerate(lines):
        row.append_text(line if number == 0 else Text("\n").append_text(blank).append_text(line))
    return row


def widest_line(text: Text) -> int:
    """The cells the widest line of a text takes, as Rich measures it."""
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


INDENT = 4  # a finding's message, evidence and fix, under its code


def indented(renderable: RenderableType) -> Padding:
    return Padding(renderable, (0, 0, 0, INDENT), expand=False)


def print_finding(console: Console, finding: Finding) -> None:
    style = STYLES[finding.severity]
    console.print(Text.assemble(("  " + finding.code, style), " ", (finding.id, "bold")))
    console.print(indented(Text(finding.message)))
    if finding.evidence:
        room = console.width - INDENT
        console.print(indented(evidence_table(finding, room)))
    if finding.fix:
        console.print(indented(Text.assemble(("fix: ", "green"), finding.fix)))
    console.print()


def render_text(
    findings: Sequence[Finding],
    *,
    title: str,
    notes: Sequence[str] = (),
    color: bool = False,
    width: int = 100,
) -> str:
    """The whole report: a title, the context notes, the findings by severity, a summary."""
    console = make_console(color, width)
    console.print(Text(title, style="bold"))
    for note in notes:
        console.print(Padding(Text(note, style="dim"), (0, 0, 0, 2), expand=False))
    console.print()
    ordered = sort_findings(list(findings))
    for severity in Severity:
        group = [f for f in ordered if f.severity is severity]
        if group:
            console.print(Text(f"{HEADINGS[severity]} ({len(group)})", style=STYLES[severity]))
            for finding in group:
                print_finding(console, finding)
    console.print(Text(summary_line(findings), style="bold"))
    return captured(console)


KIND_HEADINGS = {
    "config": "Config rules (doctor check, and doctor train before its first step)",
    "stream": "Stream detectors (doctor postmortem over a run's logs, and the live watchdog)",
    "live": "Live checks (the watchdog, on a running process only)",
}


def render_rule_list(docs: Sequence[RuleDoc], *, color: bool = False, width: int = 80) -> str:
    """`doctor rules`: per kind, one line per rule or detector (code, id, severity, whether
    --fix can fix it), then its summary indented below: fits any terminal from 60 columns."""
    console = make_console(color, width)
    id_width = max((len(doc.id) for doc in docs), default=0)
    for kind, heading in KIND_HEADINGS.items():
        group = [doc for doc in docs if doc.kind == kind]
        if not group:
            continue
        console.print(Text(heading, style="bold underline"))
        for doc in group:
            fix = f"fix: {doc.fix_available}" if kind == "config" else ""
            console.print(
                Text.assemble(
                    (doc.code, "bold"),
                    f"  {doc.id.ljust(id_width)}  ",
                    (doc.severity.value.ljust(9), STYLES[doc.severity]),
                    fix,
                )
            )
            console.print(Padding(Text(doc.summary), (0, 0, 0, 7), expand=False))
        console.print()
    console.print(Text("doctor explain CODE|ID prints one's whole doc.", style="dim"))
    return captured(console)


def render_rule_doc(doc: RuleDoc, *, color: bool = False, width: int = 100) -> str:
    """`doctor explain`: one rule's whole doc, under ruff-like headings."""
    console = make_console(color, width)
    console.print(
        Text.assemble(
            (f"{doc.code} {doc.id}", "bold"),
            f"  ({doc.kind} rule, ",
            (doc.severity.value, STYLES[doc.severity]),
            ")",
        )
    )
    sections = [
        ("What it detects", doc.summary),
        ("Why it matters", doc.why),
        ("Fix", doc.fix),
        ("Fix available with --fix", doc.fix_available),
    ]
    if doc.example:
        sections.append(("Example", doc.example))
    for heading, body in sections:
        console.print()
        console.print(Text(heading, style="bold underline"))
        console.print(body, markup=False)
    return captured(console)


def render_fix(fixed: FixOutcome, *, color: bool = False, width: int = 100) -> str:
    """What `--fix` changed, what it could not, and what a re-check of the new file says."""
    console = make_console(color, width)
    console.print()
    console.print(Text(f"Fixed config written to {fixed.output}", style="bold green"))
    for key, (old, new) in fixed.result.changes.items():
        console.print(f"  {key}: {json.dumps(old)} -> {json.dumps(new)}", markup=False)
    for reason in fixed.result.skipped:
        console.print(f"  not changed: {reason}", markup=False)
    console.print(
        Text(f"Re-check of {fixed.output}: {summary_line(fixed.remaining)}", style="bold")
    )
    for finding in sort_findings(fixed.remaining):
        severity = (finding.severity.value, STYLES[finding.severity])
        console.print(Text.assemble("  ", severity, f" {finding.code} {finding.id}"))
    return captured(console)
