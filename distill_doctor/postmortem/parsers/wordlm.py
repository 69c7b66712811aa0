"""PyTorch `examples/word_language_model` stdout (and scripts that copied its format):
    | epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch 11.43 | loss  5.94 | ppl   380.12
    | end of epoch   1 | time: 35.24s | valid loss  5.70 | valid ppl   299.77
    | End of training | test loss  6.85 | test ppl   944.04
The script steps the optimizer once per batch, so `step` is the batch count over all epochs;
the end-of-epoch validation and the final test are eval records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from distill_doctor import records as R
from distill_doctor.postmortem.inputs import LogInput
from distill_doctor.postmortem.keys import to_number
from distill_doctor.postmortem.lines import iter_lines
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "wordlm"
DESCRIPTION = "PyTorch word_language_model logs (| epoch 1 | 200/2983 batches | lr ... | loss ...)"

# Every gap and number is bounded: a pattern never scans more than a few hundred characters
# from where it starts, so a long line costs linear time.
_NUMBER = r"([-+]?(?:nan|inf|\d{1,40}(?:\.\d{0,40})?(?:e[-+]?\d{1,4})?))"
_S = r"\s{0,16}"
_TRAIN = re.compile(
    rf"\|{_S}epoch\s{{1,16}}(\d{{1,9}}){_S}\|{_S}(\d{{1,12}}){_S}/{_S}(\d{{1,12}})\s{{1,16}}batches"
    rf"{_S}\|{_S}lr\s{{1,16}}"
    + _NUMBER
    + rf"{_S}\|{_S}ms/batch\s{{1,16}}"
    + _NUMBER
    + rf"{_S}\|{_S}loss\s{{1,16}}"
    + _NUMBER
    + rf"(?:{_S}\|{_S}ppl\s{{1,16}}"
    + _NUMBER
    + ")?",
    re.IGNORECASE,
)
_EVAL = re.compile(
    rf"\|{_S}(?:end of epoch\s{{1,16}}(\d{{1,9}})|end of training).{{0,200}}?(?:valid|test) loss"
    r"\s{1,16}" + _NUMBER + rf"(?:{_S}\|{_S}(?:valid|test) ppl\s{{1,16}}" + _NUMBER + ")?",
    re.IGNORECASE,
)
MAX_SCAN_CHARS = 16 * 1024


def _number(text: str | None) -> float | int | None:
    return to_number(text) if text is not None else None


def _train_record(match: re.Match[str]) -> dict[str, object]:
    epoch, batch, total = (int(match.group(i)) for i in (1, 2, 3))
    record: dict[str, object] = {
        R.STEP: (epoch - 1) * total + batch,
        R.EPOCH: epoch - 1 + batch / total if total else float(epoch),
    }
    for key, text in ((R.LR, match.group(4)), (R.LOSS, match.group(6)), (R.PPL, match.group(7))):
        number = _number(text)
        if number is not None:
            record[key] = number
    ms_per_batch = _number(match.group(5))
    if ms_per_batch:
        record[R.STEPS_PER_S] = 1000.0 / ms_per_batch
    return record


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    batches_per_epoch = 0
    step = 0
    for raw in iter_lines(path, skipped):
        line = raw[:MAX_SCAN_CHARS].decode("utf-8", errors="replace")
        train = _TRAIN.search(line) if "batches" in line else None
        if train is not None:
            record = _train_record(train)
            batches_per_epoch = int(train.group(3))
            step = int(record[R.STEP])  # type: ignore[call-overload]
            yield record
            continue
        evaluation = _EVAL.search(line) if "loss" in line else None
        if evaluation is None:
            if line.strip() and not line.startswith(("=", "-")):
                skipped.skip("no metric on the line", len(raw))
            continue
        if evaluation.group(1):
            step = max(step, int(evaluation.group(1)) * batches_per_epoch)
        record = {R.STEP: step, R.EVAL_LOSS: _number(evaluation.group(2))}
        ppl = _number(evaluation.group(3))
        if ppl is not None:
            record[R.EVAL_PREFIX + "ppl"] = ppl
        yield record
