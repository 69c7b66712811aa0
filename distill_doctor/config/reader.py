"""Reading a config file safely: JSON or YAML, from a regular file or stdin, never a hang.

    document = read_document("recipe.yaml")

A config is small, so anything that is not one is refused with a one-paragraph error before it
can cost time or memory: a device, a FIFO or a folder (only `-`, stdin, is read as a stream),
more than `MAX_CONFIG_BYTES`, binary bytes, nesting deeper than `MAX_DEPTH`, numbers Python
will not parse, a YAML alias bomb that expands past `MAX_NODES`. YAML is read with PyYAML's
safe loader only (no object construction), with YAML 1.2 floats (`lr: 3e-4` is a number, as
every training framework reads it, not PyYAML 1.1's string). A key set twice is a warning:
both parsers keep the last value silently, and the user should know which one counts.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple

from distill_doctor.config.limits import (
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_WARNINGS,
    duplicate_warning,
    too_deep,
)
from distill_doctor.errors import InputError

STDIN = "-"
Format = Literal["json", "yaml"]
JSON_TYPE_NAMES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


class ConfigDocument(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    """One config file as read: its text, its top-level mapping, and what the reader noticed."""

    path: Path
    text: str
    data: dict[str, Any]
    format: Format
    warnings: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        """Where model folders named relative to the config are looked up."""
        return Path.cwd() if self.is_stdin else self.path.parent

    @property
    def is_stdin(self) -> bool:
        return str(self.path) == STDIN


def read_document(path: str | Path, format: Format | None = None) -> ConfigDocument:
    """The config at `path` (or stdin for `-`), parsed as JSON or YAML."""
    path = Path(path)
    text = read_config_text(path)
    chosen = format or guess_format(path, text)
    warnings: list[str] = []
    if chosen == "yaml":
        # PyYAML is imported for a YAML file only: a JSON config's check never pays for it.
        from distill_doctor.config.yaml_reader import parse_yaml

        data = parse_yaml(text, path, warnings)
    elif format is None and path.suffix.lower() != ".json":
        data, chosen = json_or_flow_yaml(text, path, warnings)
    else:
        data = parse_json(text, path, warnings)
    if not isinstance(data, dict):
        kind = JSON_TYPE_NAMES.get(type(data), "value")
        raise InputError(
            f"{path}: the top level is a {chosen.upper()} {kind}; expected a mapping of config "
            "keys (key: value)."
        )
    return ConfigDocument(path, text, data, chosen, tuple(warnings[:MAX_WARNINGS]))


def json_or_flow_yaml(text: str, path: Path, warnings: list[str]) -> tuple[Any, Format]:
    """Stdin or a file without an extension that opens with `{`: JSON, or YAML's flow style
    (`{lr: 1e-4}`); when neither reads, the JSON error is the one to show."""
    try:
        return parse_json(text, path, warnings), "json"
    except InputError as json_error:
        from distill_doctor.config.yaml_reader import parse_yaml

        try:
            return parse_yaml(text, path, warnings), "yaml"
        except InputError:
            raise json_error from None


def guess_format(path: Path, text: str) -> Format:
    """YAML by extension; JSON by extension or when the text opens an object."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json" or text.lstrip().startswith("{"):
        return "json"
    return "yaml"


def read_config_text(path: str | Path) -> str:
    """The text of a config file; a missing, special, huge, binary or empty file is an
    InputError. Stdin (`-`) is read up to the same cap."""
    path = Path(path)
    if str(path) == STDIN:
        raw = read_capped(sys.stdin.buffer, path, MAX_CONFIG_BYTES)
    else:
        with open_regular(path) as handle:
            raw = read_capped(handle, path, MAX_CONFIG_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: not UTF-8 text (byte {err.start}); is this a binary file?"
        ) from None
    if "\x00" in text:
        raise InputError(f"{path}: contains NUL bytes; is this a binary file?")
    if not text.strip():
        raise InputError(f"{path}: the file is empty; expected a JSON or YAML mapping of keys.")
    return text


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading; explain every way that can fail."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file.") from None
    except PermissionError:
        raise InputError(
            f"{path}: permission denied (a folder on the way cannot be entered, or the file "
            "cannot be read); check its permissions."
        ) from None
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot be read ({describe_os_error(err)}).") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: is a directory; give the path of a config file.")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"{path}: not a regular file (a device, FIFO or socket); a config is a file on "
            "disk. To pipe a config in, pass `-` and feed it on stdin."
        )
    if info.st_size > MAX_CONFIG_BYTES:
        raise InputError(f"{path}: {info.st_size:,} bytes is too large for a config file.")
    try:
        return open(path, "rb")  # noqa: SIM115 - returned to the caller's with-block
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({describe_os_error(err)}).") from None


def read_capped(handle: BinaryIO, path: Path, limit: int) -> bytes:
    raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise InputError(f"{path}: more than {limit:,} bytes is too large for a config file.")
    return raw


def describe_os_error(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


# --- JSON -------------------------------------------------------------------------------------


def parse_json(text: str, path: Path, warnings: list[str]) -> Any:
    """JSON with line and column on a syntax error, and a warning per duplicated key."""

    def keep_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping = dict(pairs)
        if len(mapping) == len(pairs):
            return mapping  # no key twice: the common case, at C speed
        mapping = {}
        for key, value in pairs:
            if key in mapping and len(warnings) < MAX_WARNINGS:
                warnings.append(duplicate_warning(key, mapping[key], value))
            mapping[key] = value
        return mapping

    try:
        data = json.loads(text, object_pairs_hook=keep_pairs)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}."
        ) from None
    except RecursionError:
        raise InputError(too_deep(path)) from None
    except ValueError as err:  # an integer past Python's 4,300-digit limit
        raise InputError(f"{path}: a number in the file cannot be read ({err}).") from None
    check_shape(data, path)
    return data


def check_shape(data: Any, path: Path) -> Any:
    """Refuse nesting deeper than MAX_DEPTH (the rules and renderers recurse)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(too_deep(path))
        items = value.values() if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in items if isinstance(item, (dict, list)))
    return data
