"""Plugins: what a request's `plugins` (and `transforms`, and the `:online` variant) do around the model call.

Plugin ids and their options are checked with the request (`schema.chat.PLUGINS`); this package applies
them, at four points of a request's path, each skipped at once when a request has no plugins:

    before routing   `Plugins.prepare`  a web search by the gateway's backend (`web`, `plugins/web.py`)
    per endpoint     `fit`              what one endpoint receives: the search results in the prompt, unless
                                        it searches natively (`web`), PDFs as text where it cannot read them
                                        (`file-parser`), the middle of a prompt too long for its context
                                        removed (`context-compression`)
    whole replies    `Plugins.amend`    JSON healed (`response-healing`), citations as `annotations` (`web`)
    streams          `Plugins.writer`   the same, around the face's stream writer (`plugins/stream.py`)

A request that a plugin rewrote is always translated for its endpoint, never relayed as the client wrote it
(`ChatRequest.native`): the client's body does not hold what the plugin changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from msgspec import structs

from crossroads.catalog.types import Endpoint
from crossroads.errors import ContextLengthExceeded
from crossroads.plugins import web as web_search
from crossroads.plugins.compression import middle_out
from crossroads.plugins.files import TEXT_ENGINES, engine_of, parse_files
from crossroads.plugins.healing import heal, heals
from crossroads.plugins.stream import PluginWriter
from crossroads.plugins.web import place, search_into, uses_results
from crossroads.providers.base import Completion
from crossroads.providers.search import WebSearch
from crossroads.schema.chat import measure_messages
from crossroads.schema.request import Applied, ChatRequest


class Writer(Protocol):
    def start(self, stream: Any) -> bytes: ...
    def pieces(self, pieces: Any) -> bytes: ...
    def end(self, generation: Any, charge: Any) -> bytes: ...
    def failed(self, error: Any, stream: Any) -> bytes: ...


W = TypeVar("W", bound=Writer)


class Plugins:
    """Applies a request's plugins; one per application. `search` is the `web` plugin's backend (None: the
    plugin is refused)."""

    def __init__(self, search: WebSearch | None = None) -> None:
        self.search = search

    async def prepare(self, request: ChatRequest) -> ChatRequest:
        """The request as routing should see it (web search results added). Only called for requests with
        plugins."""
        native = request.native
        if native is not None and not native.needs and not all(plugin.tool for plugin in request.plugins):
            # A server tool asked for in the client's own API (`/messages`' web search) still goes as written
            # to an endpoint of that API, which runs it itself (`web.searches_natively`).
            request = structs.replace(request, native=None)
        request = structs.replace(request, applied=request.applied or Applied())
        web = request.plugin("web")
        if web is not None:
            request = await search_into(request, web, self.search)
        return request

    def amend(self, request: ChatRequest, completion: Completion, endpoint: Endpoint) -> None:
        """A whole reply of `endpoint` as the plugins change it: JSON healed, the search backend's citations
        added where it used them."""
        applied = request.applied if uses_results(request, endpoint) else None
        healing = request.response_format if request.plugin("response-healing") is not None else None
        for choice in completion.choices:
            message = choice.get("message") or {}
            content = message.get("content")
            if healing is not None and heals(healing) and isinstance(content, str):
                healed = heal(content, healing)
                if healed is not None:
                    message["content"] = healed
            if applied is not None and applied.annotations:
                text = message.get("content")
                placed = place(applied.annotations, text if isinstance(text, str) else "")
                message["annotations"] = [*(message.get("annotations") or ()), *placed]

    def writer(self, request: ChatRequest, writer: W) -> W | PluginWriter:
        """The face's stream writer, wrapped when a plugin changes what a stream carries."""
        healing = request.response_format if request.plugin("response-healing") is not None \
            and heals(request.response_format) else None
        annotations = request.applied.annotations if request.applied is not None else ()
        if healing is None and not annotations:
            return writer
        return PluginWriter(writer, healing, annotations, lambda endpoint: uses_results(request, endpoint))


def fit(request: ChatRequest, endpoint: Endpoint) -> ChatRequest:
    """What `endpoint` receives of a request with plugins: the web search backend's results unless it
    searches natively, PDFs as text where it cannot take them or the
    `file-parser` engine says so, and the middle of the conversation removed where the prompt exceeds its
    context (`context-compression`)."""
    messages = request.messages
    if request.plugin("web") is not None:
        messages = web_search.fit(request, endpoint)
    parser = request.plugin("file-parser")
    if parser is not None and request.has_files:
        engine = engine_of(parser)
        if engine in TEXT_ENGINES or (engine is None and "file" not in endpoint.input_modalities):
            messages = parse_files(messages, request.applied.parsed_files if request.applied else {})
    if request.plugin("context-compression") is not None:
        budget = (endpoint.context_length - (request.max_output or 0) - 1) * 4
        compressed = middle_out(messages, lambda block: measure_messages(block)[0], budget)
        if compressed is None:
            raise ContextLengthExceeded(
                f"This endpoint's maximum context length is {endpoint.context_length} tokens, and the messages "
                "that context compression keeps (system, first and last) exceed it.")
        messages = compressed
    if messages is request.messages:
        return request
    chars, images, has_files, has_audio = measure_messages(messages)
    return structs.replace(request, messages=messages, prompt_chars=chars, images=images, has_files=has_files,
                           has_audio=has_audio)


def plugin_options(request: ChatRequest, plugin_id: str) -> Mapping[str, Any]:
    plugin = request.plugin(plugin_id)
    return plugin.options if plugin is not None else {}


__all__ = ["Plugins", "fit", "plugin_options"]
