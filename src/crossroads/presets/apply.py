"""A preset applied to a request body, and a preset read from one — before the body is parsed, so whatever a
preset sets (parameters, provider preferences, plugins...) is checked and used like the request's own fields.

A request names a preset as `"model": "@preset/<slug>"`, `"model": "<model>@preset/<slug>"` (the model given
wins over the preset's) or `"preset": "<slug>"`. As OpenRouter documents (guides/features/presets), request
fields override the preset's field by field (a request's `provider` object replaces the preset's whole);
`tools` are the union of both, a request's tool replacing the preset's tool of the same name. The system
prompt goes where each inbound API carries one (`Dialect`) and, being a field like the others, only into a
request that brings none of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from crossroads.errors import InvalidParameter
from crossroads.presets.book import Preset, PresetBook

MODEL_MARK: Final = "@preset/"

#: Fields of a request that belong to that one request, never to a configuration: a preset created from a
#: request body leaves them out (OpenRouter: "other fields (e.g. `messages`, `stream`, `prompt`) are silently
#: ignored"), and so does the system prompt's own field, kept apart as the preset's `system_prompt`.
TRANSIENT: Final = frozenset({"messages", "input", "prompt", "stream", "stream_options", "preset", "user",
                              "session_id", "trace", "debug", "metadata", "previous_response_id", "store",
                              "background", "conversation"})


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one inbound API carries the system prompt: in a field of its own (`/messages`' `system`,
    `/responses`' `instructions`), or as leading `system` messages (chat completions)."""

    name: str
    system_field: str | None


CHAT: Final = Dialect("chat", None)
MESSAGES: Final = Dialect("messages", "system")
RESPONSES: Final = Dialect("responses", "instructions")
#: The legacy completions API has a bare prompt: a preset's system prompt does not apply to it.
COMPLETIONS: Final = Dialect("completions", "")


def named_preset(body: dict[str, Any]) -> str | None:
    """The slug of the preset a body names (and the body without the naming), or None."""
    model = body.get("model")
    if isinstance(model, str) and MODEL_MARK in model:
        named, _, slug = model.partition(MODEL_MARK)
        if named:
            body["model"] = named
        else:
            del body["model"]
        body.pop("preset", None)
        return _slug(slug, "model")
    preset = body.pop("preset", None)
    if preset is None:
        return None
    if not isinstance(preset, str):
        raise InvalidParameter("preset", "expected a string")
    return _slug(preset, "preset")


def _slug(slug: str, field: str) -> str:
    if not slug:
        raise InvalidParameter(field, "names no preset")
    return slug


def apply(body: dict[str, Any], preset: Preset, dialect: Dialect) -> dict[str, Any]:
    """`body` with `preset`'s fields filled in where the body has none (a copy: the body is not changed)."""
    out = dict(body)
    for name, value in preset.config.items():
        if out.get(name) is None:
            out[name] = value
        elif name == "tools" and isinstance(value, list) and isinstance(out[name], list):
            out[name] = _union(out[name], value)
    prompt = preset.system_prompt
    if prompt is None or dialect.system_field == "":
        return out
    if dialect.system_field is not None:
        if out.get(dialect.system_field) is None:
            out[dialect.system_field] = prompt
    else:
        messages = out.get("messages")
        if isinstance(messages, list) and not any(
                isinstance(m, dict) and m.get("role") in ("system", "developer") for m in messages):
            out["messages"] = [{"role": "system", "content": prompt}, *messages]
    return out


def _union(mine: list[Any], theirs: list[Any]) -> list[Any]:
    names = {_tool_name(tool) for tool in mine} - {None}
    return [*mine, *(tool for tool in theirs if _tool_name(tool) not in names)]


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else tool.get("name")
    return name if isinstance(name, str) else None


def from_request(body: dict[str, Any], dialect: Dialect) -> tuple[str | None, dict[str, Any]]:
    """A request body → (the system prompt, the config) a preset keeps of it."""
    config = {k: v for k, v in body.items() if k not in TRANSIENT and v is not None}
    model = config.get("model")
    if isinstance(model, str) and MODEL_MARK in model:
        raise InvalidParameter("model", "a preset cannot name another preset")
    if dialect.system_field:
        return _text(config.pop(dialect.system_field, None)), config
    prompts = [_text(m.get("content")) for m in body.get("messages") or ()
               if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    found = [p for p in prompts if p]
    return ("\n\n".join(found) if found else None), config


def _text(content: Any) -> str | None:
    """A system prompt as text: a string, or the text of a list of text parts / blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
        return "\n".join(texts) if texts else None
    return None


class PresetResolver:
    """Applies the preset a request names, for one inbound API."""

    def __init__(self, book: PresetBook, dialect: Dialect) -> None:
        self.book = book
        self.dialect = dialect

    def resolve(self, body: Any, slug: str | None = None) -> Any:
        """The body with its preset (or `slug`'s, the preset of the URL) applied; other bodies as they are."""
        if not isinstance(body, dict):
            return body
        if slug is None and "preset" not in body and MODEL_MARK not in str(body.get("model", "")):
            return body  # the common case: no preset, no copy
        body = dict(body)
        named = named_preset(body)
        slug = named or slug
        if slug is None:
            return body
        if body.get("model") == "":
            del body["model"]  # SDKs that require a model send "" for "the preset's"
        return apply(body, self.book.get(slug), self.dialect)


__all__ = ["CHAT", "COMPLETIONS", "MESSAGES", "RESPONSES", "Dialect", "PresetResolver", "apply", "from_request",
           "named_preset"]
