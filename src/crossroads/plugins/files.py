"""The `file-parser` plugin: PDF `file` parts become text for endpoints that cannot read PDFs.

`pdf.engine` as OpenRouter documents it (openrouter.ai/docs/guides/overview/multimodal/pdfs): `native` sends
the file as it is (only endpoints that take files serve the request); `pdf-text` (and its successor name
`cloudflare-ai`) extracts the text layer, here with `pypdf`; `mistral-ocr` is an OCR service this gateway
does not run, so asking for it is refused. Without an engine, an endpoint that takes files (catalog input
modality `file`) gets the PDF and any other gets its text.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any, Final

from crossroads.errors import InvalidParameter
from crossroads.schema.request import Plugin

#: Engines that extract the text here; `native` never does.
TEXT_ENGINES: Final = ("pdf-text", "cloudflare-ai")
_PDF_PREFIX: Final = "data:application/pdf;base64,"


def engine_of(plugin: Plugin) -> str | None:
    """The plugin's `pdf.engine` (checked with the request): None (the default), `native` or a text engine."""
    engine: str | None = (plugin.options.get("pdf") or {}).get("engine")
    return engine


def parse_files(messages: list[dict[str, Any]], cache: dict[str, str]) -> list[dict[str, Any]]:
    """`messages` with every PDF `file` part replaced by a text part holding its name and text. `cache`
    keeps each file's text by its data, so a request tried on several endpoints parses a file once."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list) or not any(part.get("type") == "file" for part in content):
            out.append(message)
            continue
        parts = [_as_text(part, cache) if part.get("type") == "file" else part for part in content]
        out.append({**message, "content": parts})
    return out


def _as_text(part: dict[str, Any], cache: dict[str, str]) -> dict[str, Any]:
    file = part["file"]
    data = file.get("file_data")
    if not isinstance(data, str) or not data.startswith(_PDF_PREFIX):
        return part  # a file by id or URL, or not a PDF: left for the provider
    text = cache.get(data)
    if text is None:
        text = cache[data] = _pdf_text(data[len(_PDF_PREFIX):], file.get("filename") or "document.pdf")
    return {"type": "text", "text": text}


def _pdf_text(encoded: str, name: str) -> str:
    from pypdf import PdfReader  # on first use: a gateway that parses no PDF never loads it
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(base64.b64decode(encoded, validate=True)))
        pages = [page.extract_text() for page in reader.pages]
    except (binascii.Error, ValueError, PdfReadError) as exc:
        raise InvalidParameter("file.file_data", f"{name} is not a readable PDF: {exc}") from exc
    body = "\n\n".join(page.strip() for page in pages if page.strip())
    return f"<file name=\"{name}\">\n{body}\n</file>"


__all__ = ["TEXT_ENGINES", "engine_of", "parse_files"]
