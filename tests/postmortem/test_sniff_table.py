"""postmortem.sniff lists the formats apart from their parsers: each entry must name its parser
module and that parser's own NAME, in the order the sniffing relies on."""

from __future__ import annotations

from distill_doctor.postmortem.formats import BY_NAME, all_parsers, detect
from distill_doctor.postmortem.sniff import FORMATS


def test_each_format_names_its_parser_and_the_parsers_name():
    assert [f.name for f in FORMATS] == [p.NAME for p in all_parsers()]
    assert [p.__name__.rsplit(".", 1)[1] for p in all_parsers()] == [f.module for f in FORMATS]


def test_format_in_takes_each_name_and_gives_that_parser(tmp_path):
    log = tmp_path / "any.log"
    log.write_text("loss=1.0\n")
    for name in BY_NAME:
        assert detect(log, name).NAME == name


def test_a_json_line_without_metrics_is_no_jsonl_log(tmp_path):
    # jsonl's entry asks the parser only once the first line is a JSON object; the parser says no.
    log = tmp_path / "notes.jsonl"
    log.write_text('{"title": "a run", "author": "me"}\n')
    assert not FORMATS[3].sniff(log.read_bytes(), log)
    log.write_text('{"step": 1, "loss": 2.5}\n')
    assert FORMATS[3].sniff(log.read_bytes(), log)


def test_a_json_line_is_sniffed_in_any_encoding_json_reads(tmp_path):
    # The sniffer skips json for a first line without a `{` byte; every encoding of an object
    # has one (a UTF-8 BOM or UTF-16 before it, as Windows tools write them).
    line = '{"step": 1, "loss": 2.5}\n'
    for encoding in ("utf-8-sig", "utf-16-le"):
        log = tmp_path / f"m-{encoding}.jsonl"
        log.write_bytes(line.encode(encoding))
        assert FORMATS[3].sniff(log.read_bytes(), log), encoding
