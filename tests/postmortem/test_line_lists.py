"""`iter_text_line_lists`, the block-at-a-time line reader behind `iter_text_lines`: the same
lines as `iter_text_lines`, and skips counted in the file's order even when an over-long line
sits in the middle of a block."""

from __future__ import annotations

from distill_doctor.postmortem import lines
from distill_doctor.postmortem.parsers import ParseOptions, jsonl
from distill_doctor.postmortem.skipped import Skipped

BAD_JSON = "not a JSON object (cut off?)"


def test_a_long_line_mid_block_is_counted_between_its_neighbours(tmp_path, monkeypatch):
    monkeypatch.setattr(lines, "MAX_LINE_BYTES", 64)
    log = tmp_path / "metrics.jsonl"
    log.write_bytes(
        b"not json\r\n" + b"x" * 100 + b'\r\n{"loss": 1.5}\r\n{"loss": 2.5, "step": 9}\n'
    )

    read = Skipped("t")
    assert list(lines.iter_text_lines(log, read)) == [
        "not json",
        '{"loss": 1.5}',
        '{"loss": 2.5, "step": 9}',
    ]
    assert (read.lines, dict(read.reasons)) == (1, {lines.LONG_LINE: 1})

    skipped = Skipped("t")
    records = list(jsonl.parse(log, skipped, ParseOptions()))
    assert records == [{"loss": 1.5, "step": 0}, {"loss": 2.5, "step": 9}]
    assert list(skipped.reasons) == [BAD_JSON, lines.LONG_LINE]  # first seen, first listed


def test_lists_hold_the_lines_of_iter_text_lines(tmp_path):
    log = tmp_path / "mixed.log"
    log.write_bytes(b"a\r\n\r\nb\xff\nc\r\r\n\n  d")
    as_lists = [line for chunk in lines.iter_text_line_lists(log, Skipped("t")) for line in chunk]
    assert as_lists == list(lines.iter_text_lines(log, Skipped("t")))
    assert as_lists == ["a", "", "b\ufffd", "c\r", "", "  d"]
