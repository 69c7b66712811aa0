"""The `doctor` command line. Thin on purpose: each command lives in `distill_doctor.commands`
(parse arguments, call the library, render, pick the exit code); this module only wires them
up and turns an `InputError` into a one-paragraph message and exit code 2.

Exit codes: 0 no error-severity finding, 1 error findings, 2 usage or input error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from distill_doctor import __version__
from distill_doctor.commands import check, postmortem, rules, train
from distill_doctor.errors import InputError

app = typer.Typer(
    name="doctor",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help, as click prints it: Typer's Rich panels print a raw type beside every option
    # (`<bool>`, `<list[str]>`, `<int range>`), even beside --help; the metavars say more.
    rich_markup_mode=None,
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


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"distill_doctor {__version__}")
        raise typer.Exit(0)


@app.callback()
def doctor(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """A training-health doctor for knowledge-distillation runs.

    Lint a config before any GPU time is spent (check), diagnose a finished run from its
    logs (postmortem), or distil with the bundled trainer (train).
    """


app.command("check")(guarded(check.check))
app.command("rules")(guarded(rules.list_rules))
app.command("explain")(guarded(rules.explain))
app.command("postmortem")(guarded(postmortem.postmortem))
app.command("train")(guarded(train.train))


def main() -> None:
    app()
