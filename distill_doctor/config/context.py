"""From a config file to what the rules see: `load_context`.

    ctx, loaded = load_context("configs/seed_broken.json", gpu="P100")

reads the file (JSON or YAML, precise errors for every bad input), tells its dialect,
validates it into the
one `TrainConfig`, records which canonical keys the file really set, and resolves the teacher
and student model facts (built-in table or a local config.json, never the network) and the
GPU. `doctor check` runs the rules on `ctx`; `doctor postmortem --config` uses it to learn the
planned steps; `--fix` edits `loaded.data` in the file's own dialect. Imports no torch.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, NamedTuple

from distill_doctor.config.dialects import ParsedConfig, parse_config
from distill_doctor.config.gpus import resolve_gpu
from distill_doctor.config.models import resolve_model
from distill_doctor.config.reader import ConfigDocument, read_document
from distill_doctor.rules.base import CheckContext, ModelFacts


class LoadedConfig(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    """The file behind a CheckContext: what `--fix` edits and renderers point at."""

    document: ConfigDocument
    parsed: ParsedConfig

    @property
    def path(self) -> Path:
        return self.document.path

    @property
    def text(self) -> str:
        return self.document.text

    @property
    def data(self) -> dict[str, Any]:
        """The file's own mapping, untouched."""
        return self.document.data

    @property
    def dialect(self) -> str:
        return self.parsed.dialect

    @property
    def notes(self) -> tuple[str, ...]:
        return self.document.warnings + self.parsed.notes

    def line_of(self, key: str) -> int | None:
        """1-based line where the file sets a canonical key (in the file's spelling)."""
        file_key = self.parsed.key_names.get(key, key).split(".")[-1]  # a section's key
        pattern = rf'"{re.escape(file_key)}"\s*:|^\s*{re.escape(file_key)}\s*:'
        match = re.search(pattern, self.text, re.MULTILINE)
        return self.text.count("\n", 0, match.start()) + 1 if match else None


def model_spec(spec: str, config_dir: Path) -> str:
    """A model folder named relative to the config file is found from any working dir."""
    try:
        beside = config_dir / spec
        return str(beside) if not Path(spec).is_absolute() and beside.is_dir() else spec
    except OSError:  # no such folder can exist; resolve_model says why the name is wrong
        return spec


def resolve_models(parsed: ParsedConfig, config_dir: Path) -> dict[str, ModelFacts | None]:
    """Teacher and student facts. A Hugging Face file names no student and usually no
    teacher: only the models it names are resolved (the trainer's demo defaults are not)."""
    facts: dict[str, ModelFacts | None] = {}
    for role in ("teacher", "student"):
        key = f"{role}_model"
        if parsed.dialect == "native" or key in parsed.given:
            facts[role] = resolve_model(model_spec(getattr(parsed.config, key), config_dir))
        else:
            facts[role] = None
    return facts


def load_context(
    path: str | Path,
    *,
    dialect: str | None = None,
    train_samples: int | None = None,
    gpu: str | None = None,
    nproc: int | None = None,
) -> tuple[CheckContext, LoadedConfig]:
    """Read, validate and resolve one config file; every bad input is an InputError.
    `nproc`: the data-parallel processes the run launches with (wins over the file's)."""
    document = read_document(path)
    parsed = parse_config(document.data, str(document.path), dialect, train_samples)
    run = parsed.run if nproc is None else dataclasses.replace(parsed.run, processes=nproc)
    models = resolve_models(parsed, document.folder)
    ctx = CheckContext(
        config=parsed.config,
        dialect=parsed.dialect,
        given=parsed.given,
        teacher=models["teacher"],
        student=models["student"],
        gpu=resolve_gpu(gpu) if gpu is not None else None,
        run=run,
    )
    return ctx, LoadedConfig(document, parsed)


def describe_context(ctx: CheckContext, loaded: LoadedConfig) -> list[str]:
    """Plain lines on what the check knew and where each number came from."""
    lines = [f"dialect: {loaded.dialect}"]
    planned = ctx.planned_steps
    processes = ctx.run.processes
    over = f" over {processes} processes" if processes and processes > 1 else ""
    if planned is not None:
        lines.append(f"optimizer steps: {planned:,}{over}")
    elif ctx.most_steps is not None:
        lines.append(f"optimizer steps: at most {ctx.most_steps:,}{over} (from the dataset cap)")
    else:
        lines.append("optimizer steps: unknown (no dataset size: pass --train-samples N)")
    for role, _name, facts in ctx.named_models():
        if facts is not None:
            lines.append(
                f"{role} {facts.name}: vocab {facts.vocab_size:,}, {facts.max_positions:,} "
                f"positions, {facts.num_layers} layers ({facts.source})"
            )
    lines.extend(run_lines(ctx))
    if ctx.gpu is not None:
        bf16 = "native bf16" if ctx.gpu.bf16_native else "no native bf16"
        cores = "fp16 tensor cores" if ctx.gpu.fp16_tensor_cores else "no fp16 tensor cores"
        lines.append(f"gpu: {ctx.gpu.name} ({bf16}, {cores})")
    return lines + list(loaded.notes)


def run_lines(ctx: CheckContext) -> list[str]:
    """What the framework's file said beyond the schema: adapter, quantization, teacher."""
    run, lines = ctx.run, []
    if run.adapter:
        rank = f" rank {run.adapter_rank}" if run.adapter_rank else ""
        bits = f" over {run.weight_bits}-bit base weights" if run.weight_bits else ""
        lines.append(f"adapter: {run.adapter}{rank}{bits} (only the adapter trains)")
    elif run.weight_bits:
        lines.append(f"base weights: {run.weight_bits}-bit")
    if run.teacher_signal != "online":
        lines.append(f"teacher signal: {run.teacher_signal.replace('_', '-')} (no full logits)")
    if run.sampling_temperature is not None:
        lines.append(
            f"sampling temperature {run.sampling_temperature:g}: the student's generation, "
            "not a KD temperature"
        )
    return lines
