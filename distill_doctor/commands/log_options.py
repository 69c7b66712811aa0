"""The options that tell a log reader what a log does not say, shared by `doctor postmortem`
(a finished run) and `doctor watch` (a run being written): one spelling, one help text."""

from __future__ import annotations

from typing import Annotated

import typer

FormatIn = Annotated[
    str | None,
    typer.Option(
        metavar="NAME", help="Force the log format (e.g. seed-text, hf-stdout, tensorboard)."
    ),
]
Accumulation = Annotated[
    int | None,
    typer.Option(min=1, metavar="N", help="Micro-batches per optimizer step (tqdm bars)."),
]
VocabSize = Annotated[
    int | None,
    typer.Option(min=2, metavar="V", help="Vocabulary size, to judge a loss against chance."),
]
LoggingSteps = Annotated[
    int | None,
    typer.Option(min=1, metavar="N", help="Steps between HF Trainer stdout log lines."),
]
KeyMap = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="KEY=NAME",
        help="Read the log's NAME as KEY, e.g. loss=train_loss_step (repeatable).",
    ),
]
