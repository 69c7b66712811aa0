"""What `doctor --help` and each command's help show a newcomer: metavars that say what to
type, never a raw Python type, and `--version`."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from distill_doctor import __version__
from distill_doctor.cli import app

COMMANDS = ["check", "postmortem", "train", "rules", "explain"]
RAW_TYPE = re.compile(r"<(bool|str|int|float|path|list\[[^\]]*\]|int range|float range)>")


@pytest.mark.parametrize("args", [[], *([c] for c in COMMANDS)], ids=lambda a: " ".join(a))
def test_help_shows_no_raw_type_names(args):
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert not RAW_TYPE.search(result.output), result.output


@pytest.mark.parametrize("command", ["check", "postmortem", "train"])
def test_help_states_the_exit_codes(command):
    output = CliRunner().invoke(app, [command, "--help"]).output
    assert "Exit 0:" in output and "1:" in output and "2: bad input" in output


def test_option_metavars_say_what_to_type():
    output = CliRunner().invoke(app, ["train", "--help"]).output
    for shown in ("--set KEY=VALUE", "--max-steps N", "--config CONFIG", "--allow-errors"):
        assert shown in output


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"distill_doctor {__version__}"
