"""`doctor rules` lists every config rule and stream detector; `doctor explain NAME|CODE`
prints one's whole doc. Both read the one registry that `doctor check`, the watchdog and the
postmortem use, so the docs cannot drift from what runs."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from distill_doctor.registry import all_docs, lookup
from distill_doctor.render.text import (
    render_rule_doc,
    render_rule_list,
    terminal_width,
    use_color,
)


class ListFormat(str, Enum):
    text = "text"
    json = "json"


class RuleKindName(str, Enum):
    config = "config"
    stream = "stream"
    live = "live"


def list_rules(
    format: Annotated[
        ListFormat, typer.Option("--format", "-f", metavar="text|json", help="text or json.")
    ] = ListFormat.text,
    kind: Annotated[
        RuleKindName | None,
        typer.Option(
            metavar="config|stream",
            help="Only config rules (doctor check) or stream detectors (doctor postmortem).",
        ),
    ] = None,
) -> None:
    """List every config rule and stream detector."""
    docs = [doc for doc in all_docs() if kind is None or doc.kind == kind.value]
    if format is ListFormat.json:
        typer.echo(json.dumps({"rules": [doc.to_dict() for doc in docs]}, indent=2))
    else:
        typer.echo(render_rule_list(docs, color=use_color(), width=terminal_width(120)), nl=False)


def explain(
    # hidden: help would print the argument's raw type (<str>); the docstring names it.
    name: Annotated[str, typer.Argument(metavar="ID|CODE", hidden=True)],
    format: Annotated[
        ListFormat, typer.Option("--format", "-f", metavar="text|json", help="text or json.")
    ] = ListFormat.text,
) -> None:
    """Explain one rule or detector: what, why, the fix, an example.

    ID|CODE: a rule's or detector's id or code, e.g. kd-temperature-range or DD103.
    """
    doc = lookup(name)
    if format is ListFormat.json:
        typer.echo(json.dumps(doc.to_dict(), indent=2))
    else:
        typer.echo(render_rule_doc(doc, color=use_color(), width=terminal_width()), nl=False)
