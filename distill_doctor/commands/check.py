"""`doctor check CONFIG`: lint a training config before any GPU time is spent.

Exit codes: 0 no error-severity finding, 1 error findings (with --fix: in the fixed file),
2 usage or input error. Imports no torch or transformers.
"""

# No `from __future__ import annotations`: Typer reads the command's parameters from its
# annotations, and strings it would have to compile one by one (~2 ms of a cold start). The
# helpers' annotations that name config types are quoted: those are imported for type checks.
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from distill_doctor.errors import InputError

if TYPE_CHECKING:
    from distill_doctor.config.context import LoadedConfig
    from distill_doctor.config.fix import FixOutcome
    from distill_doctor.findings import Finding
    from distill_doctor.rules.base import CheckContext


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"


class DialectName(str, Enum):
    """`--dialect` values: rules.base.Dialect, spelled out so that building the CLI imports no
    config code (tests/check/test_framework_dialects.py keeps the two lists equal)."""

    native = "native"
    hf = "hf"
    trl = "trl"
    torchtune = "torchtune"
    llamafactory = "llamafactory"
    axolotl = "axolotl"
    distillkit = "distillkit"
    accelerate = "accelerate"
    deepspeed = "deepspeed"
    wandb = "wandb"


def check(
    # hidden: help would print the argument's raw type (<path>); the docstring names it.
    config: Annotated[Path, typer.Argument(metavar="CONFIG", hidden=True)],
    format: Annotated[
        OutputFormat,
        typer.Option(
            "--format", "-f", metavar="text|json|sarif", help="text for people, json, sarif for CI."
        ),
    ] = OutputFormat.text,
    gpu: Annotated[
        str | None,
        typer.Option(
            metavar="GPU", help="GPU to budget for: a name (P100, T4, A100-80GB...) or its GB."
        ),
    ] = None,
    dialect: Annotated[
        DialectName | None,
        typer.Option(
            metavar="DIALECT",
            help="Force the dialect (default: detect): native, hf, trl, torchtune, "
            "llamafactory, axolotl, distillkit, accelerate, deepspeed, wandb.",
        ),
    ] = None,
    train_samples: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Examples in the training set (overrides the file)."),
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Data-parallel processes (torchrun/accelerate); overrides the file's world size.",
        ),
    ] = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Write a corrected config to --output.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option(metavar="NEW.json", help="Where --fix writes (never CONFIG).")
    ] = None,
) -> None:
    """Lint a training config before any GPU time is spent.

    CONFIG is a JSON or YAML training config (`-` reads stdin): the bundled trainer's,
    Hugging Face TrainingArguments / TRL, torchtune, LLaMA-Factory, axolotl, DistillKit,
    accelerate, DeepSpeed or a W&B run's config.yaml. Scheduler steps, warmup, KD
    temperature, memory, precision, eval cadence: each finding has an id, a severity, its
    evidence and a fix; what could not be checked is said too.

    Exit 0: no error finding; 1: error findings; 2: bad input.
    """
    # Imported here, not at the top: `doctor --help` imports every command's module to list
    # it, and should not pay for the config schema and the rules.
    from distill_doctor.config.context import describe_context, load_context
    from distill_doctor.config.coverage import not_checked
    from distill_doctor.findings import has_errors
    from distill_doctor.rules import run_rules

    if fix != (output is not None):
        raise InputError(
            "--fix and --output go together: `doctor check CONFIG --fix --output "
            "NEW.json` writes the corrected config to NEW.json and leaves CONFIG as is."
        )
    options: dict[str, Any] = {"train_samples": train_samples, "gpu": gpu, "nproc": nproc}
    ctx, loaded = load_context(config, dialect=dialect.value if dialect else None, **options)
    if output is not None:
        from distill_doctor.config.fix import check_fixable

        check_fixable(loaded)
    findings = run_rules(ctx)
    fixed = fix_and_recheck(findings, ctx, loaded, output, options) if output else None
    context = Context(describe_context(ctx, loaded), not_checked(ctx))
    report = render(format, findings, context, loaded, fixed)
    typer.echo(report, nl=False)
    remaining = fixed.remaining if fixed else findings
    raise typer.Exit(1 if has_errors(remaining) else 0)


def fix_and_recheck(
    findings: "list[Finding]",
    ctx: "CheckContext",
    loaded: "LoadedConfig",
    output: Path,
    options: dict[str, Any],
) -> "FixOutcome":
    """Write the corrected config, then check it exactly as `doctor check NEW.json` would."""
    from distill_doctor.config.context import load_context
    from distill_doctor.config.fix import FixOutcome, apply_fixes, write_fixed
    from distill_doctor.rules import run_rules

    result = apply_fixes(findings, ctx, loaded)
    write_fixed(result, output, loaded.path)
    fixed_ctx, _ = load_context(output, dialect=loaded.dialect, **options)
    return FixOutcome(output, result, run_rules(fixed_ctx))


class Context(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    lines: list[str]  # what the check knew and where each number came from
    not_checked: list[str]  # what it could not check, and why


def render(
    format: OutputFormat,
    findings: "list[Finding]",
    context: Context,
    loaded: "LoadedConfig",
    fixed: "FixOutcome | None",
) -> str:
    # Each format imports its own renderer: JSON and SARIF never load Rich.
    if format is OutputFormat.sarif:
        from distill_doctor.registry import all_docs
        from distill_doctor.render.sarif import render_sarif

        docs = all_docs()
        lines = key_lines(findings, {doc.id: doc.keys for doc in docs}, loaded)
        uri = loaded.path.as_posix()
        return render_sarif(findings, docs=docs, artifact_uri=uri, lines=lines) + "\n"
    if format is OutputFormat.json:
        from distill_doctor.render.json import render_json
        from distill_doctor.render.summary import summary_line

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
    from distill_doctor.render.text import render_fix, render_text, terminal_width, use_color

    width = terminal_width()
    notes = context.lines + [f"not checked: {line}" for line in context.not_checked]
    report = render_text(
        findings, title=str(loaded.path), notes=notes, color=use_color(), width=width
    )
    if fixed is not None:
        report += render_fix(fixed, color=use_color(), width=width)
    return report


def key_lines(
    findings: "list[Finding]", rule_keys: dict[str, tuple[str, ...]], loaded: "LoadedConfig"
) -> dict[str, int | None]:
    """Each finding's line in the config: the first key its patch changes, else the first of
    its rule's keys, that the file sets (None: a rule about defaults the file leaves alone)."""
    lines: dict[str, int | None] = {}
    for finding in findings:
        candidates = [*(finding.patch or {}), *rule_keys.get(finding.id, ())]
        found = (loaded.line_of(key) for key in candidates)
        lines[finding.id] = next((line for line in found if line is not None), None)
    return lines


def fix_summary(fixed: "FixOutcome") -> dict[str, Any]:
    from distill_doctor.render.summary import summary_line

    changes = fixed.result.changes
    return {
        "output": str(fixed.output),
        "changes": {key: {"from": old, "to": new} for key, (old, new) in changes.items()},
        "skipped": fixed.result.skipped,
        "remaining": [f.to_dict() for f in fixed.remaining],
        "summary": summary_line(fixed.remaining),
    }
