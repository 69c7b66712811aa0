"""`perplexity-overflow`: a reported perplexity that is exp() of a huge loss (> ~1e6, or inf),
or exp() of the combined KD loss rather than of the cross-entropy.

The detector remembers the latest value of every loss in the stream and says which one
ln(ppl) matches: the seed's 485,165,195 is exp(20.0), its training loss, not exp(101.40),
its eval loss, and not a CE at all.
"""

from __future__ import annotations

import math
from functools import lru_cache

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.values import emit, number, plain, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import EVAL_PREFIX, LOSS, LOSS_PREFIX, PPL, Record
from distill_doctor.registry import RuleDoc, register

PPL_KEYS = (PPL, "eval_ppl", "perplexity", "eval_perplexity")
# exp(13.8): beyond any real vocabulary's uniform guess (ln 262144 = 12.5): a number no
# reader can use, and a sign of a broken loss or a wrong formula.
HUGE_PPL = 1e6
# An episode ends only well below the threshold, so noise around it gives one finding.
CLEAR_PPL = HUGE_PPL / 10
# ln(ppl) "matches" a loss within 1% (logs round both numbers).
MATCH_TOLERANCE = 0.01
# Logs print a running mean beside the ppl of another window: within 15% it is "closest to".
NEAR_TOLERANCE = 0.15
# The total differs from the CE by more than 5%: exp(total) is then not a perplexity.
COMBINED_GAP = 0.05
CE_KEYS = ("loss_ce", "eval_ce", "eval_loss_ce")
TOTAL_KEYS = (LOSS, "eval_loss")
# A near (not exact) match only names the losses people take exp() of, not KD or feature terms.
NEAR_KEYS = TOTAL_KEYS + CE_KEYS
# A per-token cross-entropy, even of a diverged model, stays below ~3x ln(262144) = 37; a loss
# far above it (a KD loss summed over tokens, 2242; a regression loss, 3e8) is no CE, and no
# exp() of it is a perplexity.
MAX_CE_LIKE = 40.0
MAX_SHAPES = 256  # record shapes remembered (a log has a handful; junk cannot grow it)

DOC = register(
    RuleDoc(
        id="perplexity-overflow",
        code="DD211",
        kind="stream",
        severity=Severity.WARNING,
        summary="A reported perplexity is exp() of a huge or combined loss.",
        why="Perplexity is exp(cross-entropy per token). exp() of a KD total (CE + KD + "
        "feature terms) or of an untrained loss gives meaningless numbers (485 million) or "
        "overflows to inf, and hides what the CE really is.",
        fix="Report exp(CE) only, computed from the mean CE over valid tokens (the LM loss, "
        "not the KD total), and cap it for display (e.g. exp(min(ce, 20))).",
        example="ppl 485165195 = exp(20.0) matches the training loss, not eval loss 101.40",
    )
)


def loss_name(key: str) -> str:
    """How a person calls the loss behind `key`: the finding and its diagnosis chain agree."""
    return {LOSS: "the training loss", "eval_loss": "the eval loss"}.get(key, key)


@lru_cache(maxsize=512)  # records reuse a handful of keys; the cache stays bounded on junk
def _is_loss_key(key: str) -> bool:
    return (
        key == LOSS
        or key.startswith(LOSS_PREFIX)
        or (key.startswith(EVAL_PREFIX) and ("loss" in key or key.endswith(("_ce", "_kd"))))
    )


def _finite_loss(raw: object) -> float | None:
    value = raw if raw.__class__ is float else number(raw)  # a float needs no conversion
    return value if value is not None and value - value == 0.0 else None


class PerplexityOverflow:
    DOC = DOC
    WATCHES = (LOSS, LOSS_PREFIX + "*", EVAL_PREFIX + "*", *PPL_KEYS)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.latest: dict[str, float] = {}  # one entry per loss key: bounded by the schema
        self.reported: set[str] = set()  # ppl keys inside a reported episode
        # Record shape -> (its loss keys, its ppl keys): found once per shape, not per record.
        self.shapes: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def _keys(self, record: Record) -> tuple[tuple[str, ...], tuple[str, ...]]:
        shape = tuple(record)
        keys = self.shapes.get(shape)
        if keys is None:
            keys = (
                tuple(k for k in shape if _is_loss_key(k)),
                tuple(k for k in PPL_KEYS if k in record),
            )
            if len(self.shapes) < MAX_SHAPES:
                self.shapes[shape] = keys
        return keys

    def update(self, record: Record) -> list[Finding]:
        findings = []
        loss_keys, ppl_keys = self._keys(record)
        self._take_losses(record, loss_keys)
        for key in ppl_keys:
            ppl = number(record.get(key))
            if ppl is not None and not math.isnan(ppl) and ppl > 0:
                finding = self._judge(key, ppl, step_of(record))
                if finding is not None:
                    findings.append(finding)
        return findings

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: a record without a perplexity only updates the latest
        losses; one with a perplexity goes through `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, _), values in with_columns(records, runs, columns):
            loss_keys, ppl_keys = self._keys(records[start])  # one shape: the run's keys
            if ppl_keys:
                for i in range(start, end):
                    found.extend((i, finding) for finding in self.update(records[i]))
                continue
            for key in loss_keys:  # only the run's last finite value of each stays
                for raw in reversed(values[key]):
                    value = _finite_loss(raw)
                    if value is not None:
                        self.latest[key] = value
                        break
        return found

    def _take_losses(self, record: Record, loss_keys: tuple[str, ...]) -> None:
        for key in loss_keys:
            value = _finite_loss(record[key])
            if value is not None:
                self.latest[key] = value

    def finish(self) -> list[Finding]:
        return []

    def _judge(self, key: str, ppl: float, step: int | None) -> Finding | None:
        log_ppl = math.log(ppl)
        huge = ppl > HUGE_PPL
        # Matching every loss costs a scan; a normal ppl only needs the totals checked.
        matched = self._match(log_ppl, MATCH_TOLERANCE) if huge else self._matched_total(log_ppl)
        combined = matched is not None and self._is_combined(matched)
        if not (huge or combined):
            if ppl < CLEAR_PPL:
                self.reported.discard(key)
            return None
        if key in self.reported:
            return None
        self.reported.add(key)
        nearest = matched or self._match(log_ppl, NEAR_TOLERANCE, NEAR_KEYS)
        return emit(
            DOC,
            step,
            self._message(key, ppl, log_ppl, matched, nearest),
            {
                "field": key,
                "ppl": plain(ppl),
                "ln_ppl": plain(log_ppl),
                "matches": matched,
                "nearest": nearest,
                "nearest_value": self.latest.get(nearest or ""),
                "ce": self._ce(),
                "ce_like": self._ce_like(matched or nearest),
                **{f"latest_{k}": v for k, v in self._others(matched)},
            },
        )

    def _ce_like(self, key: str | None) -> bool:
        """Whether the loss the ppl came from (or, unmatched, the main loss) can be a CE."""
        value = self.latest.get(key or "")
        if value is None:
            value = next((self.latest[k] for k in CE_KEYS + TOTAL_KEYS if k in self.latest), None)
        return value is None or abs(value) <= MAX_CE_LIKE

    def _match(
        self, log_ppl: float, tolerance: float, keys: tuple[str, ...] | None = None
    ) -> str | None:
        """The loss (of `keys`, or any) within `tolerance` of ln(ppl), the closest."""
        if not math.isfinite(log_ppl):
            return None
        gaps = {
            k: abs(v - log_ppl)
            for k, v in self.latest.items()
            if (keys is None or k in keys) and abs(v - log_ppl) <= tolerance * max(1.0, abs(v))
        }
        return min(gaps, key=gaps.get) if gaps else None

    def _matched_total(self, log_ppl: float) -> str | None:
        for key in TOTAL_KEYS:
            value = self.latest.get(key)
            if value is not None and abs(value - log_ppl) <= MATCH_TOLERANCE * max(1.0, abs(value)):
                return key
        return None

    def _ce(self) -> float | None:
        return next((self.latest[k] for k in CE_KEYS if k in self.latest), None)

    def _is_combined(self, matched: str) -> bool:
        """ln(ppl) is a total loss that differs clearly from the CE beside it."""
        if matched in CE_KEYS:
            return False
        ce = self._ce()
        return ce is not None and abs(self.latest[matched] - ce) > COMBINED_GAP * abs(ce)

    def _others(self, matched: str | None) -> list[tuple[str, float]]:
        """The main losses ln(ppl) did not match, for the reader to compare."""
        return [(k, self.latest[k]) for k in TOTAL_KEYS if k in self.latest and k != matched]

    def _message(
        self, key: str, ppl: float, log_ppl: float, matched: str | None, nearest: str | None
    ) -> str:
        if not math.isfinite(ppl):
            head = f"{key} overflowed to inf (exp() of a loss above ~709)"
        else:
            head = f"{key} {ppl:.6g} = exp({log_ppl:.4g})"
        if nearest is None:
            return f"{head}, matching no loss in the log."
        value = self.latest[nearest]
        if matched is None:
            # The loss printed nearby is a running mean or another window: near, not equal.
            others = ", ".join(f"{k} {v:.4g}" for k, v in self._others(nearest))
            tail = f", not of {others}" if others else ""
            gap = abs(value - log_ppl) / max(1.0, abs(value))
            return (
                f"{head}: the exp() of {loss_name(nearest)}{tail} (the {nearest} logged "
                f"nearby is {value:.4g}, {gap:.0%} from ln(ppl): a running mean or another "
                "window)."
            )
        if matched in CE_KEYS:
            return f"{head}: exp() of {matched} ({value:.4g}), itself a huge cross-entropy."
        others = ", ".join(f"{k} {v:.4g}" for k, v in self._others(matched))
        tail = f", not of {others}" if others else ""
        ce = self._ce()
        ce_text = f"; exp(CE) would be {math.exp(min(ce, 700)):.4g}" if ce is not None else ""
        return f"{head}: the exp() of {matched} ({value:.4g}){tail}{ce_text}."
