"""YAML configs through PyYAML's safe loader: YAML 1.2 floats, duplicate keys reported, and
the ways a YAML file can cost time or memory (deep flow nesting, alias bombs, recursive
aliases) refused before they do."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import yaml

from distill_doctor.config.limits import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_WARNINGS,
    MAX_YAML_BYTES,
    duplicate_warning,
    too_deep,
)
from distill_doctor.errors import InputError

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
