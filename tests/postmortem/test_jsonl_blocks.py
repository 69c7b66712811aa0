"""The JSON-lines parser reads a block of lines in one orjson call and builds a run of records
in one C loop; it must give what the parser gave when it read each line with the standard
library and built each record by the general path: the same records (keys in the same order,
values of the same type), steps, skips and skip reasons, in the same order. `line_by_line`
below is that parser, kept as the oracle."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill_doctor import records as R
from distill_doctor.postmortem import json_blocks, lines
from distill_doctor.postmortem.parsers import ParseOptions, jsonl
from distill_doctor.postmortem.skipped import Skipped

TESTS = Path(__file__).resolve().parents[1]


def line_by_line(path: Path, options: ParseOptions) -> tuple[list[dict], Skipped]:
    """The parser before blocks: each decoded line through the standard library's decoder,
    each object through `Layouts.metrics`."""
    skipped = Skipped("oracle")
    layouts = jsonl.Layouts(options)
    records, step = [], -1
    for line in lines.iter_text_lines(path, skipped):
        if not line or line.isspace():
            continue
        try:
            obj = json_blocks.decode_text(line)
        except (ValueError, RecursionError):
            skipped.skip(jsonl.NOT_JSON, len(line))
            continue
        record, found = layouts.metrics(obj) if type(obj) is dict else ({}, None)
        if not record:
            skipped.skip(jsonl.NO_METRIC, len(line))
            continue
        step = found if found is not None else step + 1
        record[R.STEP] = step
        records.append(record)
    return records, skipped


def exact(records: list[dict]) -> list[list[tuple[str, str, str]]]:
    """Records with key order and value types spelled out (1 == 1.0, and nan != nan)."""
    return [[(k, type(v).__name__, repr(v)) for k, v in record.items()] for record in records]


def assert_same_as_line_by_line(path: Path, options: ParseOptions | None = None) -> int:
    options = options or ParseOptions()
    expected, expected_skips = line_by_line(path, options)
    skipped = Skipped("oracle")
    records = list(jsonl.parse(path, skipped, options))
    assert exact(records) == exact(expected)
    assert skipped.to_dict() == expected_skips.to_dict()
    assert list(skipped.reasons) == list(expected_skips.reasons)  # first seen, first listed
    return len(records)


def plain_line(step: int, rng: random.Random) -> bytes:
    loss, lr = rng.uniform(0.5, 9), rng.choice([1e-4, 2.5e-05, 0.0003])
    return b'{"step": %d, "loss": %r, "learning_rate": %r, "grad_norm": %r, "epoch": %r}' % (
        step,
        loss,
        lr,
        rng.uniform(0, 5),
        step / 1000,
    )


# Lines that differ between orjson and the standard library, or that a block read could pair
# with the wrong line: each must come out as the line-by-line parser gave it.
ODD_LINES = [
    b'{"step": 5, "loss": NaN, "learning_rate": 1e-4}',
    b'{"step": 6, "loss": Infinity}',
    b'{"step": 7, "loss": -Infinity, "grad_norm": NaN}',
    b'{"step": 8, "loss": 1e400}',
    b'{"step": 18446744073709551617, "loss": 2.0}',
    b'{"step": 9007199254740993, "loss": 2.0}',
    b'{"step": 9, "loss": 123456789012345678901234567890, "grad_norm": -18446744073709551616}',
    b'{"step": 10, "loss": ' + b"9" * 5000 + b"}",
    b'{"step": 11, "loss": 2.5}{"step": 12}',
    b'{"step": 13, "loss": 2.5}, {"step": 14, "loss": 2.4}',
    b'{"step": 15, "loss": 2.5,"loss": 3.5}',
    b'{"step": 16, "train/loss": 2.5, "loss": 3.5, "total_loss": 1.5}',
    b'{"step": 17, "loss": "2.5", "learning_rate": "1,000"}',
    b'{"step": 18, "loss": true, "grad_norm": 1.0}',
    b'{"step": 19, "loss": null, "grad_norm": 1.0}',
    b'{"step": "20", "loss": 2.5}',
    b'{"step": -1, "loss": 2.5}',
    b'{"step": 21.0, "loss": 2.5}',
    b'{"loss": 2.5, "learning_rate": 1e-4}',
    b'{"loss": 2, "learning_rate": 0}',
    b'{"step": 41, "loss": 9007199254740993, "grad_norm": -9007199254740992}',
    b"[1, 2]",
    b"3",
    b'"text"',
    b"null",
    b"{}",
    b'{"note": "no metric here"}',
    b'{"step": 22, "eval_loss": 2.5, "epoch": 1.0}',
    b'{"\xc3\xa9tape": 1, "loss": 2.5}',
    b'{"step": 23, "loss": 2.5, "note": "\xe2\x9c\x93 done"}',
    b'{"step": 24, "loss": 2.5, "note": "\xff\xfe"}',
    b'\xff{"loss": 1.0}',
    b'{"step": 25, "loss": 2.5, "note": "\\ud800"}',
    b"",
    b"   ",
    b"\t",
    "\u00a0".encode(),
    b'{"step": 26, "loss": 2.5}\x0b',
    b'{"step": 27, "loss": 2.5}\r',
    b' {"step": 28, "loss": 2.5} ',
    b'{"step": 29, "loss": 2.5, "deep": ' + b"[" * 400 + b"]" * 400 + b"}",
    b"[" * 100_000,
    b'{"step": 30, "loss": 2.5',
    b'{"step": 31, "loss": 1.0, "grad_norm": 1e308, "epoch": 5e-324}',
    b'{"step": 32, "loss": -0.0}',
    b'{"_step": 33, "loss": 2.5, "step": 34}',
    b'{"step": 35, "step": 36, "loss": 2.5}',
    b'{"step": 37, "lr": 0.001, "learning_rate": 0.002, "loss": 2.5}',
    b'{"loss": 1.5, "step": 38, "learning_rate": 1e-4, "grad_norm": 1.0, "epoch": 0.5}',
]
# A line cut in two with a line holding two objects: joined into one array the three give
# three objects, none of them a line's.
PAIRED_WRONG = [
    b'{"step": 40, "x": [{"loss": 1.0}',
    b'{"loss": 2.0}]}',
    b'{"loss": 3.0},{"loss": 4.0}',
]


def write_log(path: Path, log_lines: list[bytes], crlf: bool = False) -> Path:
    path.write_bytes((b"\r\n" if crlf else b"\n").join(log_lines) + b"\n")
    return path


def mixed_log(seed: int, odd_every: int) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    for step in range(1, 3000):
        out.append(plain_line(step, rng))
        if step % odd_every == 0:
            out.append(rng.choice([*ODD_LINES, *PAIRED_WRONG]))
        if step % 997 == 0:
            out += PAIRED_WRONG
    return out


@pytest.mark.parametrize("max_line_bytes", [None, 300])
@pytest.mark.parametrize("crlf", [False, True])
def test_odd_lines_among_plain_ones(tmp_path, monkeypatch, max_line_bytes, crlf):
    if max_line_bytes:  # small blocks, and long lines among them
        monkeypatch.setattr(lines, "MAX_LINE_BYTES", max_line_bytes)
    log = write_log(tmp_path / "m.jsonl", mixed_log(seed=1, odd_every=37), crlf)
    assert assert_same_as_line_by_line(log) > 2900


def test_each_odd_line_alone_and_in_a_run(tmp_path):
    rng = random.Random(2)
    for index, odd in enumerate([*ODD_LINES, *PAIRED_WRONG]):
        log_lines = [plain_line(s, rng) for s in range(20)] + [odd] * 12 + [plain_line(99, rng)]
        assert_same_as_line_by_line(write_log(tmp_path / f"odd{index}.jsonl", log_lines))


def test_runs_without_a_step_count_on_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(lines, "MAX_LINE_BYTES", 200)
    log_lines = [b'{"loss": %r, "learning_rate": 1e-4}' % (1 + i / 100) for i in range(500)]
    log_lines[250:250] = [b'{"loss": "n/a"}', b'{"loss": NaN}', b'{"loss": 3}']
    log = write_log(tmp_path / "nostep.jsonl", log_lines)
    assert assert_same_as_line_by_line(log) == 502
    steps = [r[R.STEP] for r in jsonl.parse(log, Skipped("t"), ParseOptions())]
    assert steps == list(range(502))


def test_a_user_map_gives_the_same_records(tmp_path):
    log = write_log(tmp_path / "m.jsonl", mixed_log(seed=3, odd_every=11))
    options = ParseOptions(key_map={"total_loss": "loss", "grad_norm": "loss_grad"})
    assert assert_same_as_line_by_line(log, options) > 2900


def test_a_wide_layout_takes_the_general_path(tmp_path):
    wide = b"{" + b", ".join(b'"m%d_loss": %d.5' % (i, i) for i in range(90)) + b', "step": 1}'
    log = write_log(tmp_path / "wide.jsonl", [wide] * 30)
    assert assert_same_as_line_by_line(log) == 30


# Every log the tests hold, of every format: the parser must read any text the same way.
TEST_LOGS = sorted(
    p
    for folder in (TESTS / "postmortem" / "fixtures", TESTS / "real_logs")
    for p in folder.iterdir()
    if p.is_file() and p.suffix != ".md"
)


@pytest.mark.parametrize("path", TEST_LOGS, ids=lambda p: p.name)
def test_every_log_in_the_tests(path):
    assert_same_as_line_by_line(path)


def test_the_healthy_jsonl_fixture_is_read_whole(fixture):
    assert assert_same_as_line_by_line(fixture("metrics_healthy.jsonl")) > 0


def test_a_block_whose_joined_array_pairs_lines_wrongly_is_read_line_by_line():
    block = b"\n".join(PAIRED_WRONG)
    assert len(json_blocks.orjson.loads(b"[" + block.replace(b"\n", b",") + b"]")) == 3
    assert json_blocks.block_objects(block) is None
    plain = b'{"loss": 1.0}\n{"loss": 2.0, "x": [{"a": 1}]}'
    assert json_blocks.block_objects(plain) == [{"loss": 1.0}, {"loss": 2.0, "x": [{"a": 1}]}]


@pytest.mark.parametrize(
    ("line", "value"),
    [
        (b'{"loss": NaN}', {"loss": float("nan")}),
        (b'{"loss": -Infinity}', {"loss": float("-inf")}),
        (b'{"loss": 1e400}', {"loss": float("inf")}),
        (b'{"a": "\\ud800"}', {"a": "\ud800"}),
        (b'{"a": "\xff"}', {"a": "\ufffd"}),
        (b'{"a": 1}\x0b', {"a": 1}),
    ],
)
def test_what_orjson_refuses_the_standard_library_reads(line, value):
    assert json_blocks.block_objects(line) is None
    [text] = lines.block_lines(line)
    assert repr(json_blocks.text_value(text)) == repr(value)  # repr: nan != nan


def test_blank_and_broken_lines():
    assert lines.block_lines(b"a\r\n\r\nb\xff\nc\r\r") == ["a", "", "b\ufffd", "c\r"]
    assert json_blocks.text_value("  ") is json_blocks.BLANK
    assert json_blocks.text_value("\u00a0") is json_blocks.BLANK
    assert json_blocks.text_value('{"a": 1') is json_blocks.NOT_JSON
    assert json_blocks.text_value("[" * 100_000) is json_blocks.NOT_JSON
    assert json_blocks.text_value('{"a": "NaN"}') == {"a": "NaN"}


_LINES = st.one_of(
    st.sampled_from([*ODD_LINES, *PAIRED_WRONG]),
    st.builds(
        lambda step, loss: b'{"step": %d, "loss": %r, "grad_norm": 1.5}' % (step, loss),
        st.integers(-3, 2**54),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    st.builds(lambda loss: b'{"loss": %r}' % loss, st.floats(allow_nan=False)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    log_lines=st.lists(_LINES, max_size=40),
    crlf=st.booleans(),
    max_line_bytes=st.sampled_from([60, 400, 1024 * 1024]),
)
def test_any_mix_of_lines(log_lines, crlf, max_line_bytes):
    default = lines.MAX_LINE_BYTES
    lines.MAX_LINE_BYTES = max_line_bytes
    try:
        with tempfile.TemporaryDirectory() as folder:
            assert_same_as_line_by_line(write_log(Path(folder) / "m.jsonl", log_lines, crlf))
    finally:
        lines.MAX_LINE_BYTES = default
