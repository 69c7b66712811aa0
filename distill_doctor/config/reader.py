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

import datetime
import json
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import yaml

from distill_doctor.errors import InputError

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config is small; a bigger file is not a config
MAX_YAML_BYTES = 2 * 1024 * 1024  # PyYAML's safe loader reads ~1 MB/s: cap the wait
MAX_DEPTH = 64  # real configs nest 2-4 levels; deeper is a generated or hostile file
MAX_NODES = 2_000_000  # values after YAML aliases are expanded (a billion-laughs file: 10^9)
MAX_WARNINGS = 20
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


@dataclass(frozen=True)
class ConfigDocument:
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


def duplicate_warning(key: str, first: Any, last: Any) -> str:
    return (
        f"{key!r} is set twice ({short(first)}, then {short(last)}): the last value is used, "
        "as the training script's parser would; delete one."
    )


def short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, (dict, list)) else "{...}"
    return text if len(text) <= 40 else text[:37] + "..."


def too_deep(path: Path) -> str:
    return (
        f"{path}: nested deeper than {MAX_DEPTH} levels; a training config nests a few levels "
        "at most. Is this the right file?"
    )


# --- YAML -------------------------------------------------------------------------------------

# YAML 1.2's float syntax: PyYAML (YAML 1.1) wants a dot, so `lr: 3e-4` would be a string.
FLOAT_1_2 = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*\.?[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, pure Python (so that deep nesting ends in RecursionError, not a C
    stack overflow), with YAML 1.2 floats and duplicate keys reported."""

    duplicate_warnings: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # `<<: *base` merge keys, as SafeLoader does
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "found a key that is not a plain value", key_node.start_mark
                )
            key = key if isinstance(key, str) else json.dumps(key)
            value = self.construct_object(value_node, deep=deep)
            if key in mapping and len(self.duplicate_warnings) < MAX_WARNINGS:
                line = key_node.start_mark.line + 1
                warning = duplicate_warning(key, mapping[key], value)
                self.duplicate_warnings.append(f"line {line}: {warning}")
            mapping[key] = value
        return mapping


ConfigLoader.add_constructor("tag:yaml.org,2002:map", ConfigLoader.construct_mapping)
ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_1_2, list("-+0123456789."))


def parse_yaml(text: str, path: Path, warnings: list[str]) -> Any:
    """YAML through the safe loader, with line and column on a syntax error."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise InputError(f"{path}: a YAML config over {MAX_YAML_BYTES:,} bytes is not a config.")
    check_flow_depth(text, path)
    loader = None
    try:
        loader = ConfigLoader(text)  # its reader refuses control characters right here
        loader.duplicate_warnings = warnings
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "unreadable"
        raise InputError(f"{path}: invalid YAML{where}: {problem}.") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: invalid YAML: {err}.") from None
    except RecursionError:
        raise InputError(too_deep(path)) from None
    except (ValueError, OverflowError, TypeError) as err:  # e.g. an integer of 5,000 digits
        raise InputError(f"{path}: a value in the file cannot be read ({err}).") from None
    finally:
        if loader is not None:
            loader.dispose()
    return plain_values(data, path)


def expanded_size(data: Any, path: Path) -> int:
    """How many values the data holds once every alias is followed, counted in time linear in
    the distinct values (shared ones are measured once); past MAX_NODES, or nested past
    MAX_DEPTH (a recursive alias nests forever), it is refused."""
    sizes: dict[int, int] = {}

    def measure(value: Any, depth: int) -> int:
        if not isinstance(value, (dict, list, tuple, set, frozenset)):
            return 1
        if id(value) in sizes:
            return sizes[id(value)]
        if depth > MAX_DEPTH:
            raise InputError(too_deep(path))
        children = value.values() if isinstance(value, dict) else value
        size = 1 + sum(measure(child, depth + 1) for child in children)
        if size > MAX_NODES:
            raise InputError(
                f"{path}: expands to more than {MAX_NODES:,} values once its aliases (&anchor, "
                "*alias) are followed; a config is small. Is this an alias bomb?"
            )
        sizes[id(value)] = size
        return size

    return measure(data, 0)


def check_flow_depth(text: str, path: Path) -> None:
    """Refuse `[[[[...` nested past MAX_DEPTH before PyYAML's scanner sees it: the scanner's
    work grows with the square of the flow nesting (3,000 levels: 5 s)."""
    depth, quote = 0, ""
    previous = "\n"
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and previous in " \t\n[{,:":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise InputError(too_deep(path))
        elif char in "]}":
            depth = max(depth - 1, 0)
        previous = char


def plain_values(data: Any, path: Path) -> Any:
    """YAML's extra types as JSON's: dates as ISO strings, sets and pairs as lists, binary
    refused; aliased values become copies, once their expanded size is known to be small."""
    expanded_size(data, path)

    def convert(value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise InputError(too_deep(path))
        if isinstance(value, dict):
            return {key: convert(item, depth + 1) for key, item in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
            return [convert(item, depth + 1) for item in items]
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        if isinstance(value, bytes):
            raise InputError(f"{path}: holds binary data (!!binary); a config holds no bytes.")
        return value

    return convert(data, 0)


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
