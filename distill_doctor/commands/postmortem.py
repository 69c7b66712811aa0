"""`doctor postmortem` (being built; see its issue)."""

import typer


def postmortem() -> None:
    """Not built yet."""
    raise typer.Exit(2)
