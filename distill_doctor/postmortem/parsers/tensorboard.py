"""TensorBoard event files (`events.out.tfevents.*`), read with the tensorboard package's own
record reader (imported lazily: only when a file is one). Scalar tags map to record keys
(`train/loss` -> loss, `train/learning_rate` -> lr, `eval/loss` -> eval_loss, `loss/kd` ->
loss_kd...); values logged at the same step join one record. A file cut off mid-record (a
killed run) yields everything before the cut; the bytes after it are counted as skipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "tensorboard"
DESCRIPTION = "TensorBoard event files (events.out.tfevents.*) or a run directory of them"
RECORD_FRAME_BYTES = 16  # TFRecord framing: length (8) + its CRC (4) + data CRC (4)


def _scalar(value: object) -> float | None:
    from tensorboard.util import tensor_util

    if value.HasField("simple_value"):  # type: ignore[attr-defined]
        return float(value.simple_value)  # type: ignore[attr-defined]
    if value.HasField("tensor"):  # type: ignore[attr-defined]
        array = tensor_util.make_ndarray(value.tensor)  # type: ignore[attr-defined]
        if array.size == 1 and array.dtype.kind in "fiu":
            return float(array.reshape(-1)[0])
    return None


def _events(path: Path, skipped: Skipped) -> Iterator[object]:
    """Event protos; stops quietly at a cut-off or corrupt record and counts what is left."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    used = 0
    try:
        for raw in RawEventFileLoader(str(path)).Load():
            used += len(raw) + RECORD_FRAME_BYTES
            try:
                yield event_pb2.Event.FromString(raw)
            except Exception:  # noqa: BLE001 - protobuf's DecodeError has no stable import
                skipped.skip("event record that does not decode", len(raw))
    except Exception:  # noqa: BLE001 - the reader raises its own types on bad framing
        pass
    left = path.stat().st_size - used
    if left > 0:
        skipped.skip("cut-off or corrupt event record at the end", left)


def event_values(event: object, options: ParseOptions) -> dict[str, object]:
    """The scalars of one event under their record keys (empty: it holds none). `doctor
    watch` reads event files as they grow with it."""
    values: dict[str, object] = {}
    for value in event.summary.value:  # type: ignore[attr-defined]
        key = options.key(value.tag)
        number = _scalar(value) if key else None
        if key is not None and number is not None:
            values[key] = number
    return values


def parse(path: Path, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    pending: dict[str, object] = {}
    for event in _events(path, skipped):
        step = int(event.step)  # type: ignore[attr-defined]
        if pending and pending[R.STEP] != step:
            yield pending
            pending = {}
        values = event_values(event, options)
        if values:
            pending.setdefault(R.STEP, step)
            pending.update(values)
    if pending:
        yield pending
