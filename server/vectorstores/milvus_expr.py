"""Milvus boolean expressions built from untrusted values, escaped so a value can never change the expression.

pymilvus offers templated filters (`filter_params`), but Milvus Lite ignores the template values, and
pymilvus' own `ids=` helpers quote primary keys without escaping them. So every literal is written here: strings
in double quotes with the only escapes both Milvus Lite and the Milvus server parse (\\\\ \\" \\n \\r \\t);
a string with another control character is refused, since neither parser can read it back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from server.errors import InvalidInput
from server.vectorstores.base import AnyOf

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SPECIAL = re.compile(r'[\\"\n\r\t]')
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INT64 = (-(2**63), 2**63 - 1)


def string_literal(value: str) -> str:
    """`value` as a double-quoted Milvus string literal; raises InvalidInput for unwritable control characters."""
    bad = _UNWRITABLE.search(value)
    if bad:
        raise InvalidInput(f"a Milvus filter value cannot hold the control character {bad.group()!r}: {value!r}")
    return '"' + _SPECIAL.sub(lambda match: _ESCAPES[match.group()], value) + '"'


def is_writable(value: str) -> bool:
    """Whether `string_literal(value)` succeeds."""
    return _UNWRITABLE.search(value) is None


def scalar_literal(value: Any) -> str:
    """A JSON scalar (string, bool, int, finite float) as a Milvus literal."""
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise InvalidInput(f"a Milvus filter integer must fit in 64 bits, got {value}")
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise InvalidInput(
        f"Milvus metadata filters compare strings, numbers and booleans only, got {type(value).__name__} {value!r}"
    )


def metadata_filter(field: str, where: Mapping[str, Any]) -> str:
    """`field["k"] == v and ...` for each key/value of `where` (`field["k"] in [...]` for an `AnyOf`, which must
    not be empty); an empty string for no filter."""
    parts = []
    for key, value in where.items():
        if not isinstance(key, str):
            raise InvalidInput(f"metadata filter keys must be strings, got {key!r}")
        if isinstance(value, AnyOf):
            parts.append(any_of(f"{field}[{string_literal(key)}]", value))
        else:
            parts.append(f"{field}[{string_literal(key)}] == {scalar_literal(value)}")
    return " and ".join(parts)


def any_of(path: str, allowed: AnyOf) -> str:
    """`(path == "a" or path == "b")`: Milvus Lite refuses `in` on a JSON path, so membership is spelled out."""
    if not allowed.values:
        raise InvalidInput("an empty AnyOf matches nothing; the store answers it without Milvus")
    return "(" + " or ".join(f"{path} == {string_literal(value)}" for value in sorted(allowed.values)) + ")"


def in_list(field: str, values: Iterable[str]) -> str:
    """`field in ["a", "b"]` for string values."""
    return f"{field} in [{', '.join(string_literal(value) for value in values)}]"
