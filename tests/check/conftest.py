"""Shared helpers: run the real `doctor` app in-process and write config files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from distill_doctor.cli import app

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "configs" / "seed_broken.json"
HEALTHY = REPO / "configs" / "healthy.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def doctor():
    runner = CliRunner()

    def run(*args: Any):
        return runner.invoke(app, [str(a) for a in args])

    return run


@pytest.fixture
def write_config(tmp_path):
    def write(data: Any, name: str = "config.json") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
        return path

    return write


@pytest.fixture
def seed_path() -> Path:
    return SEED


@pytest.fixture
def seed() -> dict[str, Any]:
    """The seed's broken config as a fresh mapping (a test may change it)."""
    return json.loads(SEED.read_text())
