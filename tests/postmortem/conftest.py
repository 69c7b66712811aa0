"""Shared fixtures: the log files written for these tests, and the real public logs of
tests/real_logs (see its SOURCES.md and manifest.json)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

FIXTURES = Path(__file__).parent / "fixtures"
REAL_LOGS = Path(__file__).resolve().parents[1] / "real_logs"


@pytest.fixture
def fixture() -> Callable[[str], Path]:
    return lambda name: FIXTURES / name


@pytest.fixture
def real_log() -> Callable[[str], Path]:
    def find(name: str) -> Path:
        path = REAL_LOGS / name
        assert path.exists(), f"real log {name} missing from {REAL_LOGS}"
        return path

    return find


@pytest.fixture
def parse_all() -> Callable[..., tuple[list[dict], Skipped]]:
    """Run one parser module over a file: (records, skipped)."""

    def run(parser, path: Path, **options) -> tuple[list[dict], Skipped]:
        skipped = Skipped(str(path))
        return list(parser.parse(path, skipped, ParseOptions(**options))), skipped

    return run
