"""`doctor train` (being built; see its issue)."""

import typer


def train() -> None:
    """Not built yet."""
    raise typer.Exit(2)
