"""`Translation`: a framework's config said in TrainingArguments' terms, and the note on the
keys no rule reads. Every dialect module builds one; `config.hf` turns it into a TrainConfig."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distill_doctor.config.loader import did_you_mean
from distill_doctor.rules.base import RunFacts

MAX_LISTED = 12  # unknown keys named in the report; a 700k-key file gets a count, not a list


@dataclass
class Translation:
    """A framework's file said in TrainingArguments' terms, plus what those cannot say."""

    hf: dict[str, Any] = field(default_factory=dict)  # values under TrainingArguments' names
    names: dict[str, str] = field(default_factory=dict)  # TrainingArguments name -> file path
    extra: dict[str, Any] = field(default_factory=dict)  # canonical keys (kd_weight, kd_top_k...)
    extra_names: dict[str, str] = field(default_factory=dict)  # canonical key -> file path
    run: RunFacts = field(default_factory=RunFacts)
    notes: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # the file's keys no rule reads

    def take(self, hf_key: str, value: Any, file_path: str) -> None:
        """Record a value under its TrainingArguments name, if the file set one."""
        if value is not None:
            self.hf[hf_key] = value
            self.names[hf_key] = file_path

    def take_extra(self, key: str, value: Any, file_path: str) -> None:
        if value is not None:
            self.extra[key] = value
            self.extra_names[key] = file_path


def unknown_keys_note(unknown: list[str], known: frozenset[str], what: str) -> str | None:
    """One note on the keys no rule reads: the first few with a did-you-mean, then a count."""
    if not unknown:
        return None
    listed = [f"{key!r}{did_you_mean(key, sorted(known))}" for key in unknown[:MAX_LISTED]]
    more = f" and {len(unknown) - MAX_LISTED:,} more" if len(unknown) > MAX_LISTED else ""
    return (
        f"{len(unknown):,} key(s) that no {what} has, not checked: {', '.join(listed)}{more}. "
        "HfArgumentParser raises on unknown keys unless the script allows extras; check them."
    )
