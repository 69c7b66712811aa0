"""Just enough reading of the real public logs in tests/real_logs to feed the
detectors in tests (the package's real parsers live in distill_doctor.postmortem)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

REAL_LOGS = Path(__file__).resolve().parents[1] / "real_logs"
HF_KEYS = {"learning_rate": "lr"}  # the rest of log_history already uses our names
WORDLM_LINE = re.compile(
    r"\|\s+epoch\s+(\d+)\s+\|\s+(\d+)/\s*(\d+) batches \| lr ([\d.]+) "
    r".*\| loss\s+(\S+) \| ppl\s+(\S+)"
)


def real_log(name: str) -> Path:
    path = REAL_LOGS / name
    if not path.exists():
        pytest.skip(f"real logs not available ({path})")
    return path


def hf_trainer_state(name: str) -> tuple[list[dict], int | None]:
    """(records, max_steps) from a trainer_state.json."""
    state = json.loads(real_log(name).read_text())
    records = [{HF_KEYS.get(k, k): v for k, v in e.items()} for e in state["log_history"]]
    return records, state.get("max_steps")


def lightning_csv(name: str, loss_column: str) -> list[dict]:
    """The rows that have `loss_column`, as {step, loss, epoch}."""
    with real_log(name).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        {"step": int(r["step"]), "epoch": float(r["epoch"]), "loss": float(r[loss_column])}
        for r in rows
        if r[loss_column]
    ]


def wordlm_log(name: str) -> list[dict]:
    """Training lines of PyTorch's word_language_model: step = global batch index."""
    records = []
    for line in real_log(name).read_text().splitlines():
        match = WORDLM_LINE.search(line)
        if match:
            epoch, batch, batches, lr, loss, ppl = match.groups()
            step = (int(epoch) - 1) * int(batches) + int(batch)
            records.append({"step": step, "lr": float(lr), "loss": float(loss), "ppl": float(ppl)})
    return records
