"""One registry of every rule and detector, with its documentation.

`doctor rules` and `doctor explain` read it; config rules and stream detectors register here
when their packages are imported (`distill_doctor.rules`, `distill_doctor.detectors`).
"""

from __future__ import annotations

import difflib
from typing import Literal, NamedTuple

from distill_doctor.errors import InputError
from distill_doctor.findings import Severity

RuleKind = Literal["config", "stream", "live"]
FixAvailability = Literal["never", "sometimes", "always"]


class RuleDoc(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    id: str  # kebab-case, never changes
    code: str  # DD1xx config rules, DD2xx stream detectors (DD24x: live-only checks)
    kind: RuleKind
    severity: Severity  # the default (worst usual) severity
    summary: str  # one line: what it detects
    why: str  # why it is bad
    fix: str  # what to do
    fix_available: FixAvailability = "never"  # can `doctor check --fix` apply it?
    example: str = ""
    # Config keys a config rule is about, most specific first: SARIF points a finding at the
    # line of the first one its patch changes or the file sets.
    keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "code": self.code,
            "kind": self.kind,
            "severity": self.severity.value,
            "summary": self.summary,
            "why": self.why,
            "fix": self.fix,
            "fix_available": self.fix_available,
            "example": self.example,
            "keys": list(self.keys),
        }


_DOCS: dict[str, RuleDoc] = {}


def register(doc: RuleDoc) -> RuleDoc:
    """Add a rule's doc; ids and codes must be unique across the whole tool."""
    for existing in _DOCS.values():
        if existing.id == doc.id or existing.code == doc.code:
            if existing == doc:
                return doc
            raise ValueError(f"duplicate rule id or code: {doc.id}/{doc.code}")
    _DOCS[doc.id] = doc
    return doc


def _load_all() -> None:
    # Importing the packages registers their docs; neither imports torch.
    import distill_doctor.detectors  # noqa: F401
    import distill_doctor.rules  # noqa: F401
    import distill_doctor.watchdog.checks  # noqa: F401


def all_docs() -> list[RuleDoc]:
    _load_all()
    return sorted(_DOCS.values(), key=lambda d: d.code)


def lookup(name_or_code: str) -> RuleDoc:
    """Find a doc by id or code (case-insensitive); an unknown name gets a did-you-mean."""
    _load_all()
    wanted = name_or_code.strip().lower()
    for doc in _DOCS.values():
        if wanted in (doc.id, doc.code.lower()):
            return doc
    names = [d.id for d in _DOCS.values()] + [d.code for d in _DOCS.values()]
    close = difflib.get_close_matches(name_or_code, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else " Run `doctor rules` for the list."
    raise InputError(f"No rule or detector named {name_or_code!r}.{hint}")
