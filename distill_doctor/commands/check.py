"""`doctor check` (being built; see its issue)."""

import typer


def check() -> None:
    """Not built yet."""
    raise typer.Exit(2)
