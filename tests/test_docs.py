"""The README and docs/ tell the truth a newcomer can check: CI runs the README's test command,
and every command shown runs from a fresh clone (no paths outside the repository, no file that
is not in it)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def commands(page: Path) -> list[str]:
    """The `$ doctor ...` lines of a page's code blocks, continuation lines joined."""
    text = page.read_text().replace("\\\n", " ")
    return [line[2:] for line in text.splitlines() if line.startswith("$ doctor ")]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    ci_line = (REPO / ".ci/run").read_text().strip().splitlines()[-1]
    assert ci_line.startswith("pip install torch==") and f"\n{ci_line}\n" in readme


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_paths_outside_the_repository(page):
    assert "../shared" not in page.read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_a_command_reads_is_in_the_repository(page):
    for command in commands(page):
        words = shlex.split(command.split("#")[0])
        for word in words[2:]:
            if "/" not in word or word.startswith(("/", "-", "runs/")) or "<" in word:
                continue  # options, /tmp outputs, the demo's run directories
            if re.search(r"\.(png|html)$", word):
                continue  # --plot writes it
            assert (REPO / word).exists(), f"{page.name}: `{command}` reads {word}"


def test_readme_links_resolve():
    readme = (REPO / "README.md").read_text()
    for link in re.findall(r"\]\(((?:docs/)[^)#]+)", readme):
        assert (REPO / link).exists(), link
