"""Deterministic content for simulated replies, independent of any wire format.

Tokenizer: a token is a run of word characters or one punctuation character (regex `\\w+|[^\\w\\s]`);
whitespace is not a token. "Hello, world!" is four tokens. Every usage count the simulator reports uses
this tokenizer, so tests can compute expected numbers with `count_tokens`.

Text is split into *pieces* for streaming: each piece is one token with the whitespace before it, so
joining the pieces gives the text back and `len(pieces) == count_tokens(text)`.

Everything here is a pure function of a 64-bit seed (from `seed_of`, a hash of the conversation), so the
same conversation always gets the same reply, arguments, ids and logprobs.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import orjson

__all__ = [
    "TOKEN_PATTERN",
    "Rng",
    "alnum_id",
    "apply_stop",
    "break_json",
    "count_tokens",
    "default_token_count",
    "json_instance",
    "mix",
    "quote_results",
    "seed_of",
    "split_pieces",
    "text_pieces",
    "token_logprobs",
    "tool_arguments",
]

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
_PIECE_PATTERN = re.compile(r"\s*(?:\w+|[^\w\s])")

_MASK = 0xFFFFFFFFFFFFFFFF
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

_VOCABULARY = """
    the a of and to in is it that for on with as was at by this be from or an are which but not have has
    had one all were when we there can more if out so some what about into them time only new other could
    than then now its also two these may first any after most over where through back much before way well
    down should each just those people how too little state good very make world still own see men work
    long get here between both life being under never day same another know while last might us great old
    year off come since against go came right used take three small large next early young important few
    public bad able river garden window bridge signal market engine harbor forest paper letter morning city
    light stone water summer winter orange silver quiet rapid gentle simple careful bright narrow steady
    distant simulated answer request model token stream reply value number record channel gateway provider
    route latency budget cache vector matrix kernel packet socket buffer thread queue ledger ticket
"""
WORDS: tuple[str, ...] = tuple(_VOCABULARY.split())
"""Precomputed vocabulary for generated text; every entry is a single token."""

_STRING_WORDS: tuple[str, ...] = WORDS[-60:]


def count_tokens(text: str) -> int:
    """Number of tokens in `text` under the simulator's tokenizer."""
    return len(TOKEN_PATTERN.findall(text))


def split_pieces(text: str) -> list[str]:
    """Split `text` into one-token pieces (leading whitespace attached; trailing whitespace on the last)."""
    pieces = _PIECE_PATTERN.findall(text)
    consumed = sum(map(len, pieces))
    if consumed < len(text):
        if pieces:
            pieces[-1] += text[consumed:]
        else:
            pieces.append(text)
    return pieces


def seed_of(value: Any) -> int:
    """A stable 64-bit seed from any JSON-serialisable value (key order does not matter)."""
    data = value if isinstance(value, bytes) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def mix(seed: int, *values: int) -> int:
    """Derive a new seed from `seed` and some integers (splitmix64 finaliser)."""
    z = seed
    for value in values:
        z = (z ^ (value * 0x9E3779B97F4A7C15)) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
    return z


class Rng:
    """splitmix64: tiny, fast and identical on every platform and Python version."""

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK

    def next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n

    def fraction(self) -> float:
        return (self.next() >> 11) / 9007199254740992.0

    def pick(self, items: Sequence[Any]) -> Any:
        return items[self.next() % len(items)]


def alnum_id(seed: int, length: int) -> str:
    """`length` deterministic alphanumeric characters."""
    rng = Rng(seed)
    return "".join(_ALNUM[rng.below(62)] for _ in range(length))


def default_token_count(seed: int) -> int:
    """The reply length when no `tokens` directive is given: 8 to 40 tokens."""
    return 8 + mix(seed, 0x70CE) % 33


@lru_cache(maxsize=2048)
def text_pieces(seed: int, count: int) -> tuple[str, ...]:
    """Deterministic English-looking text of exactly `count` tokens, as pieces.

    Sentences of 5 to 14 words, capitalised, an occasional comma, ending with a full stop whenever the
    last token can be one.
    """
    rng = Rng(seed)
    pieces: list[str] = []
    sentence_left = 5 + rng.below(10)
    capital = True
    for i in range(count):
        after_word = bool(pieces) and pieces[-1][-1].isalnum()
        if after_word and (i == count - 1 or sentence_left <= 0):
            pieces.append(".")
            capital = True
            sentence_left = 5 + rng.below(10)
        elif after_word and sentence_left > 2 and rng.below(9) == 0:
            pieces.append(",")
        else:
            word = WORDS[rng.below(len(WORDS))]
            if capital:
                word = word.capitalize()
                capital = False
            pieces.append(" " + word if pieces else word)
            sentence_left -= 1
    return tuple(pieces)


def break_json(text: str, how: str) -> str:
    """A JSON text as models sometimes mangle it (the `broken_json` directive)."""
    if how == "fence":
        return f"```json\n{text}\n```"
    if how == "trailing":
        return f"{text}\n\nI hope this helps!"
    return text[:-2]  # truncate: the closing brackets lost


def apply_stop(pieces: Sequence[str], stops: Iterable[str]) -> tuple[list[str], bool]:
    """Cut the text before the earliest stop sequence. Returns the pieces kept and whether a stop matched."""
    text = "".join(pieces)
    cut = -1
    for stop in stops:
        if stop:
            at = text.find(stop)
            if at != -1 and (cut == -1 or at < cut):
                cut = at
    if cut == -1:
        return list(pieces), False
    kept: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) <= cut:
            kept.append(piece)
            used += len(piece)
            continue
        if cut > used:
            kept.append(piece[: cut - used])
        break
    return kept, True


def quote_results(results: Sequence[str]) -> list[str]:
    """The pieces of the reply after a tool round trip: a quote of the tools' results."""
    return split_pieces("Tool result: " + " | ".join(results))


def token_logprobs(pieces: Sequence[str], seed: int, top: int) -> list[dict[str, Any]]:
    """OpenAI-style logprob entries for each piece, with `top` alternatives (the token itself first)."""
    entries: list[dict[str, Any]] = []
    for position, piece in enumerate(pieces):
        rng = Rng(mix(seed, position))
        logprob = -round(rng.fraction() * 1.5, 6)
        alternatives: list[dict[str, Any]] = []
        if top:
            alternatives.append({"token": piece, "logprob": logprob, "bytes": list(piece.encode())})
            lead = " " if piece.startswith(" ") else ""
            step = logprob
            for _ in range(top - 1):
                word = lead + WORDS[rng.below(len(WORDS))]
                if word == piece:
                    word = lead + "alternative"
                step = round(step - 0.25 - rng.fraction() * 2.0, 6)
                alternatives.append({"token": word, "logprob": step, "bytes": list(word.encode())})
        entries.append(
            {"token": piece, "logprob": logprob, "bytes": list(piece.encode()), "top_logprobs": alternatives}
        )
    return entries


def tool_arguments(parameters: Any, seed: int) -> str:
    """A compact JSON arguments string valid against a tool's `parameters` schema."""
    schema = parameters if isinstance(parameters, dict) and parameters else {"type": "object", "properties": {}}
    return orjson.dumps(json_instance(schema, seed)).decode()


def json_instance(schema: Any, seed: int) -> Any:
    """A deterministic JSON value valid against `schema` (the common subset of JSON Schema).

    Supported: type (and type lists, null), properties/required (optional properties are included near
    the top level), additionalProperties, items/prefixItems, min/maxItems, uniqueItems, enum, const,
    anyOf/oneOf (the first branch), allOf (merged), $ref into the same document ($defs, definitions or
    any JSON pointer), minimum/maximum (also exclusive), multipleOf, min/maxLength and common string
    formats. `pattern` is not honoured.
    """
    return _SchemaInstance(schema, Rng(seed)).value(schema, 0)


_MAX_DEPTH = 24
_OPTIONAL_DEPTH = 3
_MAX_SIZE = 1000  # cap on minItems / minProperties / minLength honoured, so a schema cannot exhaust memory
_FORMATS = {
    "date-time": lambda n: f"2024-01-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
    "date": lambda n: f"2024-01-{1 + n % 28:02d}",
    "time": lambda n: f"{n % 24:02d}:{n % 60:02d}:00",
    "email": lambda n: f"user{n % 1000}@example.com",
    "hostname": lambda n: f"host{n % 1000}.example.com",
    "ipv4": lambda n: f"192.0.2.{n % 250 + 1}",
    "ipv6": lambda n: f"2001:db8::{n % 65535:x}",
    "uri": lambda n: f"https://example.com/{WORDS[n % len(WORDS)]}",
    "url": lambda n: f"https://example.com/{WORDS[n % len(WORDS)]}",
    "uri-reference": lambda n: f"/{WORDS[n % len(WORDS)]}",
    "uuid": lambda n: (
        f"{n & 0xFFFFFFFF:08x}-{(n >> 32) & 0xFFFF:04x}-4{(n >> 48) & 0xFFF:03x}"
        f"-8{(n >> 20) & 0xFFF:03x}-{(n * 7919) & 0xFFFFFFFFFFFF:012x}"
    ),
    "duration": lambda n: f"PT{1 + n % 59}M",
}


class _SchemaInstance:
    __slots__ = ("_rng", "_root")

    def __init__(self, root: Any, rng: Rng) -> None:
        self._root = root
        self._rng = rng

    def value(self, schema: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH or schema is False:
            return None
        if not isinstance(schema, dict) or not schema:
            return self._string({})
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self._resolve(ref)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.value(_merge(target, rest) if rest else target, depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._rng.pick(enum)
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(_merge(branches[0], _without(schema, key)), depth + 1)
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged = _without(schema, "allOf")
            for part in parts:
                part_schema = self._resolve(part["$ref"]) if isinstance(part, dict) and "$ref" in part else part
                merged = _merge(merged, part_schema)
            return self.value(merged, depth + 1)
        kind = _type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self._rng.below(2) == 0
        if kind == "null":
            return None
        return self._string(schema)

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node: Any = self._root
        for raw in ref[1:].split("/")[1:]:
            token = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return {}
        return node

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required")
        required_names = [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
        result: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in required_names or depth < _OPTIONAL_DEPTH:
                result[name] = self.value(sub, depth + 1)
        extra = schema.get("additionalProperties")
        extra_schema = extra if isinstance(extra, dict) else {}
        for name in required_names:
            if name not in result:
                result[name] = self.value(extra_schema, depth + 1)
        minimum = schema.get("minProperties")
        if isinstance(minimum, int) and extra is not False:
            minimum = min(minimum, _MAX_SIZE)
            index = 0
            while len(result) < minimum:
                result.setdefault(f"field_{index}", self.value(extra_schema, depth + 1))
                index += 1
        return result

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(items, list):  # draft 4 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        prefix = prefix if isinstance(prefix, list) else []
        low = schema.get("minItems")
        low = min(low, _MAX_SIZE) if isinstance(low, int) and low > 0 else 0
        high = schema.get("maxItems")
        high = high if isinstance(high, int) and high >= low else None
        count = low if depth >= _OPTIONAL_DEPTH else max(low, len(prefix), 1 + self._rng.below(2))
        if high is not None:
            count = min(count, high)
        result = [self.value(sub, depth + 1) for sub in prefix[:count]]
        unique = schema.get("uniqueItems") is True
        seen = {orjson.dumps(item, option=orjson.OPT_SORT_KEYS) for item in result} if unique else set()
        attempts = 0
        while len(result) < count and items is not False and attempts < count * 4 + 4:
            attempts += 1
            item = self.value(items if isinstance(items, dict) else {}, depth + 1)
            if unique:
                key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
                if key in seen:
                    continue
                seen.add(key)
            result.append(item)
        return result

    def _bounds(self, schema: Mapping[str, Any]) -> tuple[float | None, bool, float | None, bool]:
        """(low, low is exclusive, high, high is exclusive) from draft 4 and draft 6+ keywords."""
        low = _number_or_none(schema.get("minimum"))
        high = _number_or_none(schema.get("maximum"))
        low_open = high_open = False
        exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if isinstance(exclusive_low, bool):  # draft 4: a flag on `minimum`
            low_open = exclusive_low and low is not None
        elif (bound := _number_or_none(exclusive_low)) is not None and (low is None or bound >= low):
            low, low_open = bound, True
        if isinstance(exclusive_high, bool):
            high_open = exclusive_high and high is not None
        elif (bound := _number_or_none(exclusive_high)) is not None and (high is None or bound <= high):
            high, high_open = bound, True
        return low, low_open, high, high_open

    def _integer(self, schema: Mapping[str, Any]) -> int:
        low, low_open, high, high_open = self._bounds(schema)
        lo = None if low is None else (math.floor(low) + 1 if low_open else math.ceil(low))
        hi = None if high is None else (math.ceil(high) - 1 if high_open else math.floor(high))
        if lo is None:
            lo = 0 if hi is None else hi - 100
        if hi is None:
            hi = lo + 100
        step = schema.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool) and step > 0:
            first, last = -(-lo // step), hi // step
            if last >= first:
                return (first + self._rng.below(last - first + 1)) * step
            return first * step
        if hi < lo:
            return lo
        return lo + self._rng.below(hi - lo + 1)

    def _number(self, schema: Mapping[str, Any]) -> float | int:
        step = schema.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool):
            return self._integer(schema)
        low, low_open, high, high_open = self._bounds(schema)
        if low is None:
            low = 0.0 if high is None else high - 100.0
        if high is None:
            high = low + 100.0
        value = round(low + self._rng.fraction() * (high - low), 2)
        if (low_open and value <= low) or (high_open and value >= high) or not low <= value <= high:
            value = (low + high) / 2
        if isinstance(step, float) and step > 0:
            multiple = math.ceil(low / step) * step
            return multiple if multiple <= high else value
        return value

    def _string(self, schema: Mapping[str, Any]) -> str:
        n = self._rng.next()
        fmt = schema.get("format")
        make = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if make is not None:
            text: str = make(n)
        else:
            words = 1 + n % 4
            text = " ".join(_STRING_WORDS[self._rng.below(len(_STRING_WORDS))] for _ in range(words))
        low = schema.get("minLength")
        if isinstance(low, int) and len(text) < low:
            low = min(low, _MAX_SIZE * 10)
            text = (text + " " + "x" * low)[:low] if text else "x" * low
        high = schema.get("maxLength")
        if isinstance(high, int) and len(text) > high:
            text = text[:high]
        return text


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _without(schema: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _merge(base: Any, extra: Mapping[str, Any]) -> Any:
    """Shallow merge of two schemas; properties and required lists are combined."""
    if not isinstance(base, dict):
        return dict(extra) if extra else base
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        elif key == "required" and isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *(name for name in value if name not in merged[key])]
        else:
            merged.setdefault(key, value)
    return merged


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        concrete = [k for k in kind if isinstance(k, str) and k != "null"]
        return concrete[0] if concrete else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"
