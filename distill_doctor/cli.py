"""The `doctor` command line. Thin on purpose: each command lives in `distill_doctor.commands`
(parse arguments, call the library, render, pick the exit code); this module only wires them
up and turns an `InputError` into a one-paragraph message and exit code 2.

Exit codes: 0 no error-severity finding, 1 error findings, 2 usage or input error.
"""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from distill_doctor import __version__
from distill_doctor.errors import InputError

# Each command's module and function, in the order `doctor --help` lists them. A command's
# module is imported when that command runs (or help lists it), never to build the CLI: a
# cold `doctor check` should pay neither for the trainer's options nor for the report's.
COMMANDS = {
    "check": ("check", "check"),
    "rules": ("rules", "list_rules"),
    "explain": ("rules", "explain"),
    "postmortem": ("postmortem", "postmortem"),
    "train": ("train", "train"),
    "watch": ("watch", "watch"),
}
SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    # Plain help, as click prints it: Typer's Rich panels print a raw type beside every option
    # (`<bool>`, `<list[str]>`, `<int range>`), even beside --help; the metavars say more.
    "rich_markup_mode": None,
}


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; an InputError becomes a clear message on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as err:
            from rich.console import Console
            from rich.text import Text

            # The message quotes the user's paths and values: text, never markup.
            message = Text.assemble(("error:", "bold red"), f" {err}")
            Console(stderr=True, highlight=False, emoji=False).print(message)
            raise typer.Exit(2) from None

    return wrapper


class CommandTable(Mapping[str, Any]):
    """The group's commands, each built from its module on first use: click looks commands
    up by name, so `doctor check` imports and builds `check` alone."""

    def __init__(self) -> None:
        self.built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.built:
            module, function = COMMANDS[name]
            callback = getattr(
                importlib.import_module(f"distill_doctor.commands.{module}"), function
            )
            single = typer.Typer(**SETTINGS)
            single.command(name)(guarded(callback))
            self.built[name] = typer.main.get_command(single)
        return self.built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class DoctorGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = CommandTable()

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names only: listing them builds none


app = typer.Typer(name="doctor", no_args_is_help=True, cls=DoctorGroup, **SETTINGS)


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


# Commands that print a report and end: nothing of theirs needs the interpreter's teardown.
REPORT_COMMANDS = frozenset({"check", "postmortem", "rules", "explain"})


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in REPORT_COMMANDS:
        # No cyclic garbage collection while a report starts: the imports (Typer's pydantic, the
        # schema, the rules, the parsers) allocate ~10^5 objects that live to the end, and the
        # collector would only scan them again and again (~20 ms of CPU, 5% of a cold `doctor
        # check`). Reference counting still frees everything else. check, rules and explain
        # read bounded input (a config is capped by config.limits); postmortem turns the
        # collector back on before it reads the logs, which are not bounded.
        gc.disable()
        exit_code: list[object] = [0]
        # Registered first, so it runs last of the exit handlers (they run in reverse order).
        atexit.register(end_without_teardown, exit_code)
        try:
            app()
        except SystemExit as done:
            exit_code[0] = done.code
            raise
    else:
        app()


def end_without_teardown(exit_code: list[object]) -> None:
    """End the process once the exit handlers have run, skipping the interpreter's teardown:
    freeing every module and object a report loaded (pydantic's schemas, Rich, the rules)
    costs ~50 ms of CPU, half the bare `import typer, rich`, and a report command has
    nothing left to clean up (its files are closed, its output is flushed here)."""
    code = exit_code[0]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or stream: the usual exit reports it
        return
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
