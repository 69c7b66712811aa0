"""The `doctor` command line. Thin on purpose: each command lives in `distill_doctor.commands`
(parse arguments, call the library, render, pick the exit code); this module only wires them
up and turns an `InputError` into a one-paragraph message and exit code 2.

Exit codes: 0 no error-severity finding, 1 error findings, 2 usage or input error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from distill_doctor.commands import check, postmortem, rules, train, watch
from distill_doctor.errors import InputError

app = typer.Typer(
    name="doctor",
    help="A training-health doctor for knowledge-distillation runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; an InputError becomes a clear message on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as err:
            Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {err}")
            raise typer.Exit(2) from None

    return wrapper


app.command("check")(guarded(check.check))
app.command("rules")(guarded(rules.list_rules))
app.command("explain")(guarded(rules.explain))
app.command("postmortem")(guarded(postmortem.postmortem))
app.command("train")(guarded(train.train))
app.command("watch")(guarded(watch.watch))


def main() -> None:
    app()
