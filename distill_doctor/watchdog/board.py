"""A TensorBoard event file read as it grows, for `doctor watch`: TFRecord frames taken as
they complete (a frame cut mid-write waits for its end), the scalars of one step joined into
one record as the postmortem's parser joins them, and handed out when the next step starts
or the file goes quiet (a writer flushes a step's values together, so a quiet file means the
step is whole). The Hugging Face TrainingArguments summary gives the run's plan."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from distill_doctor import records as R
from distill_doctor.postmortem.parsers import ParseOptions, tensorboard
from distill_doctor.postmortem.skipped import Skipped
from distill_doctor.watchdog.run_plan import event_facts
from distill_doctor.watchdog.tail import Tail

FRAME_HEAD = 12  # length (8 bytes) and its CRC (4); the data's CRC (4) follows the data
MAX_EVENT_BYTES = 64 * 1024 * 1024  # a record longer than this is a corrupt length


def frames(chunks: Iterator[bytes], skipped: Skipped) -> Iterator[bytes | None]:
    """Each frame's data as it completes; None when the file goes quiet."""
    buffer = b""
    for chunk in chunks:
        if not chunk:
            yield None
            continue
        buffer += chunk
        while len(buffer) >= FRAME_HEAD:
            length = int.from_bytes(buffer[:8], "little")
            if length > MAX_EVENT_BYTES:
                skipped.skip("corrupt event record; the rest of the file is not read", len(buffer))
                return
            end = FRAME_HEAD + length + 4
            if len(buffer) < end:
                break
            yield buffer[FRAME_HEAD : FRAME_HEAD + length]
            buffer = buffer[end:]


def records(
    tail: Tail,
    skipped: Skipped,
    options: ParseOptions,
    on_plan: Callable[[dict[str, float | int | None]], None],
) -> Iterator[dict[str, object]]:
    from tensorboard.compat.proto import event_pb2  # only for a run that writes events

    pending: dict[str, object] = {}
    for frame in frames(tail.chunks(), skipped):
        if frame is None:
            if pending:
                yield pending
                pending = {}
            continue
        try:
            event = event_pb2.Event.FromString(frame)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError has no stable import
            skipped.skip("event record that does not decode", len(frame))
            continue
        facts = event_facts(event)
        if facts:
            on_plan(facts)
        values = tensorboard.event_values(event, options)
        if not values:
            continue
        step = int(event.step)  # type: ignore[attr-defined]
        if pending and pending[R.STEP] != step:
            yield pending
            pending = {}
        pending.setdefault(R.STEP, step)
        pending.update(values)
    if pending:
        yield pending
