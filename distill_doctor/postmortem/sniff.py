"""Which log format a file's head shows (its first 64 KiB and its name), told without the
parsers: `formats` imports a parser module only once its format is chosen, so the postmortem of
a plain text log compiles none of the JSON, CSV or Hugging Face parsers' patterns (~10 ms of a
cold start).

Two formats need their parser to decide, and import it only when the head could be theirs:
JSON lines (the first object must hold a metric the parser maps) and plain text (its lines
must parse to a loss; it is tried last, when nothing else matched).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

_HF_STDOUT = re.compile(
    rb"""\{\s{0,8}(['"])(?:loss|eval_loss|learning_rate|train_runtime|grad_norm)\1\s{0,8}:"""
)
_WORDLM = re.compile(
    rb"\|\s{0,16}epoch\s{1,16}\d{1,9}\s{0,16}\|\s{0,16}\d{1,12}\s{0,16}/\s{0,16}\d{1,12}"
    rb"\s{1,16}batches\s{0,16}\|",
    re.IGNORECASE,
)
_SEED_TEXT = re.compile(
    rb"(?:\b(?:loss|lr)=[ \t]{0,8}[-+.\dna]|\[Eval\]|^[ \t]{0,16}Step[ \t]{1,8}\d[\d,]{0,20}"
    rb"[ \t]{0,8}:|\[Scheduler\]|produced non-finite)",
    re.IGNORECASE | re.MULTILINE,
)


def _first_object(head: bytes) -> object:
    """The first line as JSON, or None when it is none."""
    first = head.lstrip().split(b"\n", 1)[0]
    if b"{" not in first:  # no JSON object, in any encoding: a text log never imports json
        return None
    import json

    try:
        return json.loads(first)
    except (ValueError, RecursionError):
        return None


def tensorboard(head: bytes, path: object) -> bool:
    return isinstance(path, Path) and "tfevents" in path.name


def events_jsonl(head: bytes, path: object) -> bool:
    event = _first_object(head)
    if not isinstance(event, dict):
        return False
    from distill_doctor.events import EVENT_TYPES

    return event.get("type") in EVENT_TYPES


def hf_state(head: bytes, path: Path) -> bool:
    if path.name == "trainer_state.json":
        return True
    return head.lstrip().startswith(b"{") and b'"log_history"' in head


def jsonl(head: bytes, path: object) -> bool:
    if not isinstance(_first_object(head), dict):
        return False
    from distill_doctor.postmortem.parsers import jsonl

    return jsonl.sniff(head, path)


def lightning_csv(head: bytes, path: object) -> bool:
    header = head.split(b"\n", 1)[0].strip().lower().split(b",")
    return len(header) > 1 and (b"step" in header or b"epoch" in header)


def hf_stdout(head: bytes, path: object) -> bool:
    return _HF_STDOUT.search(head) is not None


def wordlm(head: bytes, path: object) -> bool:
    return _WORDLM.search(head) is not None


def seed_text(head: bytes, path: object) -> bool:
    return _SEED_TEXT.search(head) is not None


def plain_text(head: bytes, path: object) -> bool:
    from distill_doctor.postmortem.parsers import plain_text

    return plain_text.sniff(head, path)


class Format(NamedTuple):
    name: str  # what --format-in takes (the parser's NAME)
    module: str  # the parser's module in distill_doctor.postmortem.parsers
    sniff: Callable[[bytes, Path], bool]


# Most specific first: an events.jsonl line is also JSON-lines; an HF stdout log also has
# `loss=`-free text a seed log would claim; a word_language_model log has `lr` and `loss`.
FORMATS: tuple[Format, ...] = (
    Format("tensorboard", "tensorboard", tensorboard),
    Format("events-jsonl", "events_jsonl", events_jsonl),
    Format("hf-trainer-state", "hf_state", hf_state),
    Format("jsonl", "jsonl", jsonl),
    Format("lightning-csv", "lightning_csv", lightning_csv),
    Format("hf-stdout", "hf_stdout", hf_stdout),
    Format("wordlm", "wordlm", wordlm),
    Format("seed-text", "seed_text", seed_text),
    Format("plain-text", "plain_text", plain_text),
)
