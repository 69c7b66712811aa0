"""`doctor rules` and `doctor explain` (being built; see the doctor check issue)."""

import typer


def list_rules() -> None:
    """Not built yet."""
    raise typer.Exit(2)


def explain(name: str) -> None:
    """Not built yet."""
    raise typer.Exit(2)
