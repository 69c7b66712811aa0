"""`--map KEY=NAME`: the user says which of the log's names is which record key, when the
defaults guess wrong (a Lightning `train_loss_step` wanted per step, a `total` that is the
loss). KEY is a record key (`loss`, `eval_loss`, `lr`, `grad_norm`, `loss_<part>`,
`eval_<metric>`...); NAME is as the log spells it (matched like every name: case, `/`, `-`
and spaces do not matter)."""

from __future__ import annotations

from distill_doctor import records as R
from distill_doctor.errors import InputError
from distill_doctor.postmortem.keys import normalise

_KEYS = frozenset(
    value
    for name, value in vars(R).items()
    if name.isupper() and isinstance(value, str) and not value.endswith("_")
)
_PREFIXES = (R.LOSS_PREFIX, R.EVAL_PREFIX)


def parse_key_map(items: list[str]) -> dict[str, str]:
    """{normalised log name: record key} from `KEY=NAME` items, or an InputError."""
    mapping: dict[str, str] = {}
    for item in items:
        key, sep, name = item.partition("=")
        key, name = key.strip(), name.strip()
        if not sep or not key or not name:
            raise InputError(f"--map {item!r}: write KEY=NAME, e.g. --map loss=train_loss_step.")
        if key not in _KEYS and not (key.startswith(_PREFIXES) and len(key) > 5):
            raise InputError(
                f"--map {item!r}: {key!r} is not a record key; use one of "
                f"{', '.join(sorted(_KEYS))}, or loss_<part> / eval_<metric>."
            )
        mapping[normalise(name)] = key
    return mapping
