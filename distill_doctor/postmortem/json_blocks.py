"""JSON lines decoded a block at a time: orjson on a whole block of lines when it can, and one
line at a time, with the standard library for what orjson refuses, when it cannot. The values
are those `json.loads` gives for each line (the JSON-lines parser's tests compare them).

orjson refuses what the standard library reads: NaN and Infinity (Python's `json.dumps`
writes them, and a diverged run logs them), a number too big for a float (1e400 is inf),
lone surrogates, bytes that are not UTF-8 (replaced, as every text parser does). What orjson
accepts it reads alike, except an int past 64 bits, which it makes the float that `to_number`
makes of it anyway, and nesting 990 to 1,023 deep, which the standard library refuses or not
depending on how deep the caller's stack is."""

from __future__ import annotations

import json
import re

import orjson

BLANK = object()  # a blank line: neither a value nor a fault
NOT_JSON = object()  # a line that is not JSON (cut off, garbage)
_DECODER = json.JSONDecoder()
_SCAN = _DECODER.scan_once
# Two objects on one line (`{...}, {...}`): the one way a block read as an array can pair its
# elements with other than its lines (see `block_objects`).
_TWO_ON_A_LINE = re.compile(rb"\}[ \t\r]*,[ \t\r]*\{")
_OBJECTS_ONLY = {dict}
# What Python's `json.dumps` writes for a non-finite float (`-Infinity` holds `Infinity`).
_REFUSED, _REFUSED_TOO = b"NaN", b"Infinity"


def block_objects(block: bytes) -> list[dict[str, object]] | None:
    """The objects of a block's LF-separated lines, one per line, in one orjson call on the
    lines joined into an array; None when the block must be read line by line (a line orjson
    refuses, a blank line, a value that is not an object).

    Why the elements are the lines: a line break is whitespace to JSON, so a comma between two
    elements that is not one of the joins sits inside one line, between the `}` and the `{` of
    two objects. With no such line, n elements from n lines means that every join separates
    two elements: each line is exactly one element, as orjson reads it alone."""
    if _REFUSED in block or _REFUSED_TOO in block:
        return None  # not worth a try: orjson stops there
    try:
        objects = orjson.loads(b"[" + block.replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        return None
    if (
        len(objects) != block.count(b"\n") + 1
        or {*map(type, objects)} != _OBJECTS_ONLY
        or _TWO_ON_A_LINE.search(block)
    ):
        return None
    return objects


def text_value(text: str) -> object:
    """One line's value, BLANK or NOT_JSON: orjson first, unless the line names a value it
    refuses, and the standard library for what it refuses."""
    if "NaN" not in text and "Infinity" not in text:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    if not text or text.isspace():
        return BLANK
    try:
        return decode_text(text)
    except (ValueError, RecursionError):
        return NOT_JSON


def decode_text(line: str) -> object:
    """`json.loads` of one line without its per-call overhead (the scanner straight on a line
    that starts with its object, as metric lines do)."""
    if not line.startswith("{"):
        return _DECODER.decode(line)
    try:
        obj, end = _SCAN(line, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(line) and not line[end:].isspace():
        raise ValueError("extra data after the object")
    return obj
