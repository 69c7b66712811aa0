"""Bad input: truncated, binary garbage, a 10 MB line, mixed encodings, empty and unknown
files; and hypothesis fuzzing of every parser (no exception may escape)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill_doctor.errors import InputError
from distill_doctor.postmortem import inputs, lines
from distill_doctor.postmortem.analysis import analyze
from distill_doctor.postmortem.formats import all_parsers, detect
from distill_doctor.postmortem.parsers import ParseOptions, seed_text
from distill_doctor.postmortem.skipped import Skipped

FIXTURES = Path(__file__).parent / "fixtures"
# Fixed binary garbage (no line breaks, so it stays one bad line): a test must not be flaky.
GARBAGE = bytes(random.Random(0).randrange(256) for _ in range(2000)).translate(None, b"\r\n")
SAMPLES = sorted(p for p in FIXTURES.iterdir() if p.suffix != ".json" or "trainer" in p.name)


def test_ten_megabyte_line_is_skipped_with_a_note(tmp_path, parse_all):
    path = tmp_path / "long.log"
    path.write_bytes(b"loss=1.0\n" + b"x" * (10 * 1024 * 1024) + b"\nloss=2.0\n")
    records, skipped = parse_all(seed_text, path)
    assert [r["loss"] for r in records] == [1.0, 2.0]
    assert skipped.reasons == {lines.LONG_LINE: 1} and skipped.bytes == 10 * 1024 * 1024


def test_long_line_across_chunks_and_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(lines, "MAX_LINE_BYTES", 1500)
    path = tmp_path / "l.log"
    path.write_bytes(b"a\n" + b"y" * 5000 + b"\nb\n" + b"z" * 4000)
    skipped = Skipped("l")
    assert list(lines.iter_lines(path, skipped)) == [b"a", b"b"]
    assert skipped.lines == 2 and skipped.bytes == 9000


def test_truncated_binary_and_mixed_encodings(tmp_path, parse_all):
    path = tmp_path / "mixed.log"
    path.write_bytes(
        b"loss=3.0 lr=1e-4\r\n"
        + GARBAGE
        + b"\n[Eval] loss: 2.5 \xe9t\xe9\nloss=2.9 lr=1e-4 caf\xc3\xa9\nloss=2.8 l"
    )
    records, skipped = parse_all(seed_text, path)
    assert [r.get("loss") for r in records[:1]] == [3.0]
    assert {"eval_loss": 2.5, "step": 0} in records
    assert any(r.get("loss") == 2.9 for r in records) and records[-1]["loss"] == 2.8
    assert skipped.lines >= 1


def test_empty_and_unrecognised_files_name_the_formats(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.*hf-stdout"):
        detect(empty)
    other = tmp_path / "notes.txt"
    other.write_text("Shopping list: eggs, milk.\n")
    with pytest.raises(InputError, match="not a training log.*tensorboard.*seed-text"):
        detect(other)
    with pytest.raises(InputError, match="no such file"):
        analyze([tmp_path / "missing.log"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=3000))
def test_random_bytes_never_raise(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "events.out.tfevents.fuzz"
    path.write_bytes(data)
    for parser in all_parsers():
        list(parser.parse(path, Skipped("f"), ParseOptions()))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sample=st.sampled_from(SAMPLES),
    cuts=st.lists(
        st.tuples(st.integers(0, 40000), st.integers(0, 200), st.binary(max_size=40)), max_size=6
    ),
)
def test_mutated_real_looking_logs_never_raise(tmp_path_factory, sample, cuts):
    data = bytearray(sample.read_bytes())
    for start, length, junk in cuts:
        start %= max(1, len(data))
        data[start : start + length] = junk
    path = tmp_path_factory.mktemp("mut") / sample.name
    path.write_bytes(bytes(data))
    parser = detect(sample)
    list(parser.parse(path, Skipped("m"), ParseOptions()))
    try:
        analyze([path])
    except InputError:
        pass  # a mutation may leave a file no format recognises: a clean exit 2
