"""Field checks for request bodies: small callables that take a JSON value and the field's path, and either
return the (possibly normalised) value or raise `InvalidParameter` naming the path.

They are composed into declarative tables (see `schema/chat.py`) so that every documented parameter's type,
range and shape is stated once, in one place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from crossroads.errors import InvalidParameter

Check = Callable[[Any, str], Any]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class Number:
    """A JSON number (not a boolean) within [low, high]."""

    __slots__ = ("high", "low")

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        self.low = low
        self.high = high

    def __call__(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidParameter(path, f"expected a number, got {_kind(value)}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise InvalidParameter(path, f"must be {_range(self.low, self.high)}, got {value}")
        return value


INT32_MAX: Final = (1 << 31) - 1
INT64_MIN: Final = -(1 << 63)
INT64_MAX: Final = (1 << 63) - 1


class Integer:
    """A JSON integer within [low, high]; an integral float such as `100.0` is accepted as `100`. Without
    bounds, the range is a signed 64-bit integer's: no provider takes more, and no JSON encoder writes more."""

    __slots__ = ("high", "low")

    def __init__(self, low: int = INT64_MIN, high: int = INT64_MAX) -> None:
        self.low = low
        self.high = high

    def __call__(self, value: Any, path: str) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameter(path, f"expected an integer, got {_kind(value)}")
        if value < self.low or value > self.high:
            if value < self.low and self.high == INT64_MAX:
                raise InvalidParameter(path, f"must be {self.low} or greater, got {_short(value)}")
            raise InvalidParameter(path, f"must be between {self.low} and {self.high}, got {_short(value)}")
        return value


def _short(value: int) -> str:
    """An integer for a message: a huge one (say `1e308` sent as a float) as its order of magnitude."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[0]}.{text[1:4]}e{len(text) - 1}"


def _range(low: float | None, high: float | None) -> str:
    """`between 0 and 2`, `at least 0` or `at most 1`: what a number's bounds allow."""
    if high is None:
        return f"at least {low:g}"
    if low is None:
        return f"at most {high:g}"
    return f"between {low:g} and {high:g}"


def boolean(value: Any, path: str) -> Any:
    if not isinstance(value, bool):
        raise InvalidParameter(path, f"expected a boolean, got {_kind(value)}")
    return value


class String:
    __slots__ = ("max_length", "min_length")

    def __init__(self, min_length: int = 0, max_length: int | None = None) -> None:
        self.min_length = min_length
        self.max_length = max_length

    def __call__(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise InvalidParameter(path, f"expected a string, got {_kind(value)}")
        if len(value) < self.min_length:
            raise InvalidParameter(path, "must not be empty" if self.min_length == 1 else
                                   f"must be at least {self.min_length} characters long")
        if self.max_length is not None and len(value) > self.max_length:
            raise InvalidParameter(path, f"must be at most {self.max_length} characters long")
        return value


string: Final = String()


class Enum:
    __slots__ = ("values",)

    def __init__(self, *values: str) -> None:
        self.values = values

    def __call__(self, value: Any, path: str) -> Any:
        if value not in self.values or not isinstance(value, str):
            raise InvalidParameter(path, f"must be one of {', '.join(map(repr, self.values))}, got {value!r}")
        return value


class ListOf:
    __slots__ = ("item", "max_items", "min_items")

    def __init__(self, item: Check, *, min_items: int = 0, max_items: int | None = None) -> None:
        self.item = item
        self.min_items = min_items
        self.max_items = max_items

    def __call__(self, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise InvalidParameter(path, f"expected an array, got {_kind(value)}")
        if len(value) < self.min_items:
            raise InvalidParameter(path, f"must have at least {self.min_items} item(s)")
        if self.max_items is not None and len(value) > self.max_items:
            raise InvalidParameter(path, f"must have at most {self.max_items} items, got {len(value)}")
        item = self.item
        for i, element in enumerate(value):
            value[i] = item(element, f"{path}[{i}]")
        return value


class MapOf:
    """A JSON object with arbitrary keys, each value checked by `item`."""

    __slots__ = ("item", "key_max", "max_items")

    def __init__(self, item: Check, *, max_items: int | None = None, key_max: int | None = None) -> None:
        self.item = item
        self.max_items = max_items
        self.key_max = key_max

    def __call__(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise InvalidParameter(path, f"expected an object, got {_kind(value)}")
        if self.max_items is not None and len(value) > self.max_items:
            raise InvalidParameter(path, f"must have at most {self.max_items} entries")
        for key, element in value.items():
            if self.key_max is not None and len(key) > self.key_max:
                raise InvalidParameter(f"{path}.{key}", f"keys must be at most {self.key_max} characters long")
            value[key] = self.item(element, f"{path}.{key}")
        return value


class Obj:
    """A JSON object with known fields. `required` fields must be present; with `closed`, unknown fields are
    refused (naming them) instead of passed along."""

    __slots__ = ("closed", "fields", "required")

    def __init__(self, fields: Mapping[str, Check], *, required: Sequence[str] = (), closed: bool = False) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)
        self.closed = closed

    def __call__(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise InvalidParameter(path, f"expected an object, got {_kind(value)}")
        for name in self.required:
            if value.get(name) is None:
                raise InvalidParameter(f"{path}.{name}", "is required")
        fields = self.fields
        for key, element in value.items():
            check = fields.get(key)
            if check is not None:
                if element is not None:
                    value[key] = check(element, f"{path}.{key}")
            elif self.closed:
                raise InvalidParameter(f"{path}.{key}", f"unknown field; expected one of {', '.join(fields)}")
        return value


def any_object(value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise InvalidParameter(path, f"expected an object, got {_kind(value)}")
    return value


def anything(value: Any, path: str) -> Any:
    return value


class OneOf:
    """The first check whose `accepts` predicate matches the value's JSON kind decides."""

    __slots__ = ("choices", "expected")

    def __init__(self, expected: str, *choices: tuple[Callable[[Any], bool], Check]) -> None:
        self.expected = expected
        self.choices = choices

    def __call__(self, value: Any, path: str) -> Any:
        for accepts, check in self.choices:
            if accepts(value):
                return check(value, path)
        raise InvalidParameter(path, f"expected {self.expected}, got {_kind(value)}")


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_list(value: Any) -> bool:
    return isinstance(value, list)


def is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class NumericString:
    """A number, or a string holding one (OpenRouter's `max_price` takes both)."""

    __slots__ = ("low",)

    def __init__(self, low: float = 0) -> None:
        self.low = low

    def __call__(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise InvalidParameter(path, f"expected a number, got {value!r}") from None
        elif is_number(value):
            number = float(value)
        else:
            raise InvalidParameter(path, f"expected a number or a numeric string, got {_kind(value)}")
        if not math.isfinite(number) or number < self.low:
            raise InvalidParameter(path, f"must be {self.low:g} or greater, got {value!r}")
        return value
