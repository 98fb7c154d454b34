"""What plugins change in a stream, as a wrapper around the face's own writer (`api.inference.StreamWriter`).

- `response-healing`: the client must receive the healed JSON, which is only known once the reply is whole.
  So when the plugin is on and the request asks for JSON (`response_format` `json_object`/`json_schema`), the
  content deltas are held back; at the end each choice's content goes out in one delta — healed when it
  needed and allowed healing, as written otherwise — followed by the held finish chunks. Everything else
  (the role, reasoning, tool calls) streams as it comes. A stream that breaks sends what it held first.
- `web`: the search backend's citations go out as one `annotations` delta ahead of the choice's finish
  chunk, as OpenRouter sends them — when the serving endpoint used the results (an endpoint that searched
  natively sends its own citations, translated by its adapter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from crossroads.catalog.types import Endpoint
from crossroads.errors import CrossroadsError
from crossroads.ledger.accounting import Charge, Generation
from crossroads.plugins.healing import heal
from crossroads.providers.base import Piece

if TYPE_CHECKING:
    from crossroads.routing.outcome import OpenStream


class StreamWriter(Protocol):
    """A face's stream writer (`api.inference.StreamWriter`, repeated to keep imports pointing down)."""

    def start(self, stream: OpenStream) -> bytes: ...
    def pieces(self, pieces: list[Piece]) -> bytes: ...
    def end(self, generation: Generation, charge: Charge) -> bytes: ...
    def failed(self, error: CrossroadsError, stream: OpenStream | None) -> bytes: ...


class PluginWriter:
    """Holds back JSON content to heal (when `healing` is the request's `response_format`) and adds
    `annotations` before each choice's finish."""

    __slots__ = ("annotated", "annotations", "cites", "content", "healing", "held", "inner")

    def __init__(self, inner: StreamWriter, healing: Mapping[str, Any] | None,
                 annotations: Sequence[Mapping[str, Any]], cites: Callable[[Endpoint], bool]) -> None:
        self.inner = inner
        self.healing = healing
        self.annotations = list(annotations)
        #: Whether an endpoint's reply carries `annotations` (it used the search results they cite).
        self.cites = cites
        #: Per choice index, the content held back for healing.
        self.content: dict[int, list[str]] = {}
        #: Finish chunks held back until the content is out.
        self.held: list[Piece] = []
        self.annotated: set[int] = set()

    def start(self, stream: OpenStream) -> bytes:
        if stream.endpoint is None or not self.cites(stream.endpoint):
            self.annotations = []
        return self.inner.start(stream)

    def pieces(self, pieces: list[Piece]) -> bytes:
        out: list[Piece] = []
        for piece in pieces:
            choices = piece.get("choices") or ()
            if self.healing is not None:
                for choice in choices:
                    delta = choice.get("delta") or {}
                    content = delta.pop("content", None)
                    if content:
                        self.content.setdefault(choice.get("index", 0), []).append(content)
                if any(choice.get("finish_reason") for choice in choices) or (self.held and "usage" in piece):
                    self.held.append(piece)
                    continue
                if not any(choice.get("delta") for choice in choices) and "usage" not in piece:
                    continue
            elif self.annotations:
                out.extend(self._annotations(choices))
            out.append(piece)
        return self.inner.pieces(out) if out else b""

    def _annotations(self, choices: Sequence[Mapping[str, Any]]) -> list[Piece]:
        out: list[Piece] = []
        for choice in choices:
            index = choice.get("index", 0)
            if choice.get("finish_reason") and index not in self.annotated:
                self.annotated.add(index)
                out.append({"choices": [{"index": index, "delta": {"annotations": self.annotations},
                                         "finish_reason": None}]})
        return out

    def _release(self) -> bytes:
        """The held content (healed where it can be), the annotations, then the held finish chunks."""
        if self.healing is None:
            return b""
        out: list[Piece] = []
        for index, parts in sorted(self.content.items()):
            text = "".join(parts)
            healed = heal(text, self.healing)
            out.append({"choices": [{"index": index, "delta": {"content": text if healed is None else healed},
                                     "finish_reason": None}]})
        self.content.clear()
        for piece in self.held:
            if self.annotations:
                out.extend(self._annotations(piece.get("choices") or ()))
            out.append(piece)
        self.held.clear()
        return self.inner.pieces(out) if out else b""

    def end(self, generation: Generation, charge: Charge) -> bytes:
        return self._release() + self.inner.end(generation, charge)

    def failed(self, error: CrossroadsError, stream: OpenStream | None) -> bytes:
        return self._release() + self.inner.failed(error, stream)


__all__ = ["PluginWriter"]
