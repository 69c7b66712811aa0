"""`doctor check CONFIG`: lint a training config before any GPU time is spent.

Exit codes: 0 no error-severity finding, 1 error findings (with --fix: in the fixed file),
2 usage or input error. Imports no torch or transformers.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from distill_doctor.config.context import LoadedConfig, describe_context, load_context
from distill_doctor.config.fix import FixResult, apply_fixes, write_fixed
from distill_doctor.errors import InputError
from distill_doctor.findings import Finding, has_errors
from distill_doctor.registry import all_docs
from distill_doctor.render.json import render_json
from distill_doctor.render.sarif import render_sarif
from distill_doctor.render.text import render_fix, render_text, summary_line, use_color
from distill_doctor.rules import run_rules


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"


class DialectName(str, Enum):
    native = "native"
    hf = "hf"


def check(
    config: Annotated[Path, typer.Argument(help="The training config (JSON) to check.")],
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
    findings = run_rules(ctx)
    fixed: tuple[FixResult, list[Finding]] | None = None
    if output is not None:
        result = apply_fixes(findings, ctx, loaded)
        write_fixed(result, output, loaded.path)
        fixed_ctx, _ = load_context(output, dialect=loaded.dialect, **options)
        fixed = (result, run_rules(fixed_ctx))
    typer.echo(
        render(
            format,
            findings,
            ctx_lines=describe_context(ctx, loaded),
            loaded=loaded,
            output=output,
            fixed=fixed,
        ),
        nl=False,
    )
    remaining = fixed[1] if fixed else findings
    raise typer.Exit(1 if has_errors(remaining) else 0)


def render(
    format: OutputFormat,
    findings: list[Finding],
    *,
    ctx_lines: list[str],
    loaded: LoadedConfig,
    output: Path | None,
    fixed: tuple[FixResult, list[Finding]] | None,
) -> str:
    if format is OutputFormat.sarif:
        lines = {f.id: loaded.line_of(next(iter(f.patch))) for f in findings if f.patch}
        return (
            render_sarif(
                findings, docs=all_docs(), artifact_uri=loaded.path.as_posix(), lines=lines
            )
            + "\n"
        )
    if format is OutputFormat.json:
        extra: dict[str, Any] = {
            "config": str(loaded.path),
            "dialect": loaded.dialect,
            "context": ctx_lines,
            "summary": summary_line(findings),
        }
        if fixed is not None:
            extra["fixed"] = fix_summary(output, *fixed)
        return render_json(findings, **extra) + "\n"
    report = render_text(findings, title=str(loaded.path), notes=ctx_lines, color=use_color())
    if fixed is not None:
        report += render_fix(str(output), *fixed, color=use_color())
    return report


def fix_summary(output: Path | None, result: FixResult, remaining: list[Finding]) -> dict:
    return {
        "output": str(output),
        "changes": {key: {"from": old, "to": new} for key, (old, new) in result.changes.items()},
        "skipped": result.skipped,
        "remaining": [f.to_dict() for f in remaining],
        "summary": summary_line(remaining),
    }
