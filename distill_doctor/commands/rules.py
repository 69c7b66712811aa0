"""`doctor rules` lists every config rule and stream detector; `doctor explain NAME|CODE`
prints one's whole doc. Both read the one registry that `doctor check`, the watchdog and the
postmortem use, so the docs cannot drift from what runs."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from distill_doctor.registry import all_docs, lookup
from distill_doctor.render.text import render_rule_doc, render_rule_list, use_color


class ListFormat(str, Enum):
    text = "text"
    json = "json"


class RuleKindName(str, Enum):
    config = "config"
    stream = "stream"
    live = "live"


def list_rules(
    format: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.text,
    kind: Annotated[
        RuleKindName | None,
        typer.Option(help="Only config rules (doctor check) or stream detectors (watchdog)."),
    ] = None,
) -> None:
    """List every rule and detector: code, name, kind, severity, fix availability."""
    docs = [doc for doc in all_docs() if kind is None or doc.kind == kind.value]
    if format is ListFormat.json:
        typer.echo(json.dumps({"rules": [doc.to_dict() for doc in docs]}, indent=2))
    else:
        typer.echo(render_rule_list(docs, color=use_color()), nl=False)


def explain(
    name: Annotated[str, typer.Argument(help="A rule or detector name or code.")],
    format: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.text,
) -> None:
    """Explain one rule or detector: what it detects, why it matters, the fix, an example."""
    doc = lookup(name)
    if format is ListFormat.json:
        typer.echo(json.dumps(doc.to_dict(), indent=2))
    else:
        typer.echo(render_rule_doc(doc, color=use_color()), nl=False)
