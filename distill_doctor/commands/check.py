"""`doctor check CONFIG`: lint a training config before any GPU time is spent.

Exit codes: 0 no error-severity finding, 1 error findings (with --fix: in the fixed file),
2 usage or input error. Imports no torch or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from distill_doctor.config.context import LoadedConfig, describe_context, load_context
from distill_doctor.config.coverage import not_checked
from distill_doctor.config.fix import FixOutcome, apply_fixes, check_fixable, write_fixed
from distill_doctor.errors import InputError
from distill_doctor.findings import Finding, has_errors
from distill_doctor.registry import all_docs
from distill_doctor.render.json import render_json
from distill_doctor.render.sarif import render_sarif
from distill_doctor.render.text import render_fix, render_text, summary_line, use_color
from distill_doctor.rules import run_rules
from distill_doctor.rules.base import CheckContext, Dialect


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"


DialectName = Enum(  # type: ignore[misc]  # every dialect, spelled as --dialect takes it
    "DialectName", {name: name for name in get_args(Dialect)}, type=str
)


def check(
    config: Annotated[
        Path, typer.Argument(help="The training config (JSON or YAML; - reads stdin) to check.")
    ],
    format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="text for people, json, sarif for CI.")
    ] = OutputFormat.text,
    gpu: Annotated[
        str | None, typer.Option(help="GPU to budget for: a name (P100, T4, A100-80GB...) or GB.")
    ] = None,
    dialect: Annotated[
        DialectName | None, typer.Option(help="Force the config dialect (default: detect).")
    ] = None,
    train_samples: Annotated[
        int | None, typer.Option(min=1, help="Examples in the training set (overrides the file).")
    ] = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Write a corrected config to --output.")
    ] = False,
    output: Annotated[Path | None, typer.Option(help="Where --fix writes (never CONFIG).")] = None,
) -> None:
    """Lint a training config: scheduler steps, warmup, KD temperature, memory, precision..."""
    if fix != (output is not None):
        raise InputError(
            "--fix and --output go together: `doctor check CONFIG --fix --output "
            "NEW.json` writes the corrected config to NEW.json and leaves CONFIG as is."
        )
    options: dict[str, Any] = {"train_samples": train_samples, "gpu": gpu}
    ctx, loaded = load_context(config, dialect=dialect.value if dialect else None, **options)
    if output is not None:
        check_fixable(loaded)
    findings = run_rules(ctx)
    fixed = fix_and_recheck(findings, ctx, loaded, output, options) if output else None
    context = Context(describe_context(ctx, loaded), not_checked(ctx))
    report = render(format, findings, context, loaded, fixed)
    typer.echo(report, nl=False)
    remaining = fixed.remaining if fixed else findings
    raise typer.Exit(1 if has_errors(remaining) else 0)


def fix_and_recheck(
    findings: list[Finding],
    ctx: CheckContext,
    loaded: LoadedConfig,
    output: Path,
    options: dict[str, Any],
) -> FixOutcome:
    """Write the corrected config, then check it exactly as `doctor check NEW.json` would."""
    result = apply_fixes(findings, ctx, loaded)
    write_fixed(result, output, loaded.path)
    fixed_ctx, _ = load_context(output, dialect=loaded.dialect, **options)
    return FixOutcome(output, result, run_rules(fixed_ctx))


@dataclass(frozen=True)
class Context:
    lines: list[str]  # what the check knew and where each number came from
    not_checked: list[str]  # what it could not check, and why


def render(
    format: OutputFormat,
    findings: list[Finding],
    context: Context,
    loaded: LoadedConfig,
    fixed: FixOutcome | None,
) -> str:
    if format is OutputFormat.sarif:
        lines = {f.id: loaded.line_of(next(iter(f.patch))) for f in findings if f.patch}
        uri = loaded.path.as_posix()
        return render_sarif(findings, docs=all_docs(), artifact_uri=uri, lines=lines) + "\n"
    if format is OutputFormat.json:
        extra: dict[str, Any] = {
            "config": str(loaded.path),
            "dialect": loaded.dialect,
            "context": context.lines,
            "not_checked": context.not_checked,
            "summary": summary_line(findings),
        }
        if fixed is not None:
            extra["fixed"] = fix_summary(fixed)
        return render_json(findings, **extra) + "\n"
    notes = context.lines + [f"not checked: {line}" for line in context.not_checked]
    report = render_text(findings, title=str(loaded.path), notes=notes, color=use_color())
    if fixed is not None:
        report += render_fix(fixed, color=use_color())
    return report


def fix_summary(fixed: FixOutcome) -> dict[str, Any]:
    changes = fixed.result.changes
    return {
        "output": str(fixed.output),
        "changes": {key: {"from": old, "to": new} for key, (old, new) in changes.items()},
        "skipped": fixed.result.skipped,
        "remaining": [f.to_dict() for f in fixed.remaining],
        "summary": summary_line(fixed.remaining),
    }
