"""Proto-JSON, as Google's parser reads a request: message fields known by their camelCase or snake_case name
("Unknown name ... Cannot find field" otherwise), and typed scalars ("Invalid value at ..."). Errors name
fields by their snake_case path, as Google's do."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from ..checks import is_number
from .errors import bad_value, invalid

__all__ = [
    "base64_bytes",
    "boolean",
    "integer",
    "join",
    "message",
    "number",
    "repeated",
    "string",
]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def message(value: Any, known: frozenset[str], where: str, kind: str) -> dict[str, Any]:
    """A proto message: an object whose keys are known fields (camelCase or snake_case), keys made camel."""
    if not isinstance(value, dict):
        raise bad_value(where or "request", f"type.googleapis.com/google.ai.generativelanguage.v1beta.{kind}",
                        value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in known else _camel(key)
        if name not in known:
            at = f" at '{where}'" if where else ""
            raise invalid(f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.')
        out[name] = item
    return out


def join(where: str, name: str) -> str:
    return f"{where}.{_snake(name)}" if where else _snake(name)


def integer(value: Any, where: str, kind: str = "TYPE_INT32") -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):  # int64 fields may be JSON strings
        return int(value)
    if not is_number(value) or value != int(value):
        raise bad_value(where, kind, value)
    return int(value)


def number(value: Any, where: str) -> float:
    if not is_number(value):
        raise bad_value(where, "TYPE_FLOAT", value)
    return float(value)


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise bad_value(where, "TYPE_BOOL", value)
    return value


def string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad_value(where, "TYPE_STRING", value)
    return value


def base64_bytes(value: Any, where: str) -> str:
    text = string(value, where)
    try:
        if "-" in text or "_" in text:
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        else:
            base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed for \"{text[:40]}\"") \
            from None
    return text


def repeated(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(f"Invalid JSON payload received. Invalid value at '{where}': expected a list")
    return value
