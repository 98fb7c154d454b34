"""What a Messages reply says: a thinking block, tool calls, structured output, a web search and its cited
answer, a quote of tool results or prose, cut by `max_tokens` and the stop sequences; and the input tokens
the usage reports, with the prompt cache's prefix (see the package's docstring for the rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .. import reply
from ..behaviour import Behaviour
from ..search import results as search_results
from ..tools import tools_named
from .thinking import sign_thinking
from .validate import Params

__all__ = ["Block", "count_prompt_tokens", "layout", "plan_reply"]

TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_ATTACHMENT: Final = 85


def _text_of(blocks: Sequence[Mapping[str, Any]]) -> str:
    return " ".join(block["text"] for block in blocks if block.get("type") == "text")


def _result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return _text_of(content)
    return content if isinstance(content, str) else ""


def _block_tokens(block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return reply.count_tokens(block["text"])
    if kind in ("image", "document"):
        return TOKENS_PER_ATTACHMENT
    if kind == "tool_use":
        return reply.count_tokens(block["name"]) + reply.count_tokens(orjson.dumps(block["input"]).decode())
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return sum(_block_tokens(part) for part in content)
        return reply.count_tokens(content) if isinstance(content, str) else 0
    if kind == "thinking":
        return reply.count_tokens(block["thinking"])
    return 0


def _tool_tokens(tool: Mapping[str, Any]) -> int:
    schema = orjson.dumps(tool.get("input_schema")).decode()
    text = " ".join((tool.get("name", ""), tool.get("description", ""), schema))
    return reply.count_tokens(text)


def layout(params: Params) -> tuple[int, int, str | None]:
    """(prompt tokens, tokens up to the last `cache_control` marker, that marker's TTL), in the order
    Anthropic builds its cache prefix: tools, system, messages ("Prompt caching")."""
    total = 0
    prefix = 0
    ttl: str | None = None

    def mark(item: Mapping[str, Any]) -> None:
        nonlocal prefix, ttl
        control = item.get("cache_control")
        if isinstance(control, dict):
            prefix, ttl = total, control.get("ttl") or "5m"

    for tool in params.tools:
        total += _tool_tokens(tool)
        mark(tool)
    for block in params.system:
        total += reply.count_tokens(block["text"])
        mark(block)
    for message in params.messages:
        total += TOKENS_PER_MESSAGE
        for block in message["content"]:
            total += _block_tokens(block)
            mark(block)
    if params.cache_control is not None:
        prefix, ttl = total, params.cache_control.get("ttl") or "5m"
    return total, prefix, ttl


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Input tokens (cached or not) the simulator reports for a valid request body."""
    params = Params(model="", messages=[{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]
                                         if isinstance(m["content"], str) else m["content"]}
                                        for m in body["messages"]],
                    max_tokens=0, system=[{"type": "text", "text": body["system"]}]
                    if isinstance(body.get("system"), str) else list(body.get("system") or ()),
                    tools=list(body.get("tools") or ()), cache_control=body.get("cache_control"))
    return layout(params)[0]


def _tools_to_call(params: Params) -> list[dict[str, Any]]:
    tools = [tool for tool in params.tools if tool.get("type", "custom") == "custom"]
    choice = params.tool_choice or {"type": "auto"}
    kind = choice["type"]
    if not tools or kind == "none":
        return []
    if kind == "tool":
        return [tool for tool in tools if tool["name"] == choice["name"]][:1]
    last = params.messages[-1]
    answering = last["role"] == "user" and any(block.get("type") == "tool_result" for block in last["content"])
    if answering and kind != "any":
        return []
    said = next((_text_of(m["content"]) for m in reversed(params.messages)
                 if m["role"] == "user" and _text_of(m["content"])), "").lower()
    return tools_named(tools, said, forced=kind == "any", parallel=not choice.get("disable_parallel_tool_use"))


def _tool_results(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    last = messages[-1]
    if last["role"] != "user":
        return []
    return [_result_text(block) for block in last["content"] if block.get("type") == "tool_result"]


def _first_stop(pieces: Sequence[str], stops: Sequence[str]) -> str | None:
    text = "".join(pieces)
    found = [(text.find(stop), stop) for stop in stops if stop and stop in text]
    return min(found)[1] if found else None


@dataclass(slots=True)
class Block:
    """One planned content block: thinking, a tool call or text, with its stream pieces."""

    kind: str
    pieces: list[str] = field(default_factory=list)
    signature: str = ""
    tool_id: str = ""
    name: str = ""
    arguments: str = ""
    #: A `web_search_tool_result`'s results; a text block's citations.
    results: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)

    def rendered(self) -> dict[str, Any]:
        if self.kind == "thinking":
            return {"type": "thinking", "thinking": "".join(self.pieces), "signature": self.signature}
        if self.kind in ("tool_use", "server_tool_use"):
            return {"type": self.kind, "id": self.tool_id, "name": self.name, "input": orjson.loads(self.arguments)}
        if self.kind == "web_search_tool_result":
            return {"type": self.kind, "tool_use_id": self.tool_id, "content": self.results}
        if self.citations:
            return {"type": "text", "text": "".join(self.pieces), "citations": self.citations}
        return {"type": "text", "text": "".join(self.pieces)}


def _web_search_tool(params: Params) -> dict[str, Any] | None:
    return next((tool for tool in params.tools if str(tool.get("type", "")).startswith("web_search_")), None)


def _search(tool: Mapping[str, Any], query: str, seed: int) -> tuple[list[Block], list[dict[str, Any]]]:
    """The `server_tool_use` and `web_search_tool_result` blocks of one search ("Web search tool": results
    limited to `allowed_domains` / without `blocked_domains`), and the citations of its first two results."""
    allowed, blocked = tool.get("allowed_domains") or [], tool.get("blocked_domains") or []

    def kept(url: str) -> bool:
        host = url.split("/")[2]
        within = [d for d in allowed if host == d or host.endswith("." + d)]
        return bool(within or not allowed) and not any(host == d or host.endswith("." + d) for d in blocked)

    found = [r for r in search_results(query, 5) if kept(r["url"])]
    tool_id = "srvtoolu_01" + reply.alnum_id(reply.mix(seed, 0x5EA), 22)
    results = [{"type": "web_search_result", "url": r["url"], "title": r["title"],
                "encrypted_content": "Eu" + reply.alnum_id(reply.mix(seed, n), 40), "page_age": None}
               for n, r in enumerate(found)]
    citations = [{"type": "web_search_result_location", "url": r["url"], "title": r["title"],
                  "encrypted_index": "Eo" + reply.alnum_id(reply.mix(seed, 0xC1, n), 30),
                  "cited_text": r["text"][:150]} for n, r in enumerate(found[:2])]
    arguments = orjson.dumps({"query": query}).decode()
    return [Block("server_tool_use", reply.split_pieces(arguments), tool_id=tool_id, name="web_search",
                  arguments=arguments),
            Block("web_search_tool_result", tool_id=tool_id, results=results)], citations


def plan_reply(params: Params, behaviour: Behaviour) -> tuple[list[Block], int, int, str, str | None]:
    """(blocks, output tokens, thinking tokens, stop reason, stop sequence). The web searches made are the
    `server_tool_use` blocks among them."""
    seed = reply.seed_of({"system": params.system, "messages": params.messages})
    blocks: list[Block] = []
    left = params.max_tokens
    thinking = 0
    if params.thinking_budget is not None:
        think_seed = reply.mix(seed, 0x7417)
        wanted = behaviour.reasoning or reply.default_token_count(think_seed)
        thinking = min(wanted, params.thinking_budget, left)
        pieces = list(reply.text_pieces(think_seed, thinking)) if params.thinking_display == "summarized" else []
        blocks.append(Block("thinking", pieces, signature=sign_thinking(think_seed)))
        left -= thinking
    calls = _tools_to_call(params)
    if calls:
        stop = "tool_use"
        used = 0
        for j, tool in enumerate(calls):
            call_seed = reply.mix(seed, 1, j + 1)
            arguments = reply.tool_arguments(tool.get("input_schema"), call_seed)
            tokens = reply.count_tokens(arguments)
            if used + tokens > left:
                stop = "max_tokens"
                break
            used += tokens
            tool_id = "toolu_01" + reply.alnum_id(reply.mix(call_seed, 0xCA11), 22)
            blocks.append(Block("tool_use", reply.split_pieces(arguments), tool_id=tool_id, name=tool["name"],
                                arguments=arguments))
        return blocks, thinking + used, thinking, stop, None
    count = behaviour.tokens if behaviour.tokens is not None else reply.default_token_count(reply.mix(seed, 1))
    results = _tool_results(params.messages)
    citations: list[dict[str, Any]] = []
    search = _web_search_tool(params)
    if search is not None and not results and params.output_schema is None:
        said = next((_text_of(m["content"]) for m in reversed(params.messages)
                     if m["role"] == "user" and _text_of(m["content"])), "")
        if said:
            searched, citations = _search(search, said[:200], seed)
            blocks += searched
    if params.output_schema is not None:
        text = orjson.dumps(reply.json_instance(params.output_schema, reply.mix(seed, 1))).decode()
        pieces = reply.split_pieces(text)
    elif results:
        pieces = reply.quote_results(results)
    else:
        pieces = list(reply.text_pieces(reply.mix(seed, 1), count))
    stop_reason = "end_turn"
    if len(pieces) > left:
        pieces, stop_reason = pieces[:left], "max_tokens"
    stop_sequence = _first_stop(pieces, params.stops)
    if stop_sequence is not None:
        pieces, _ = reply.apply_stop(pieces, [stop_sequence])
        stop_reason = "stop_sequence"
    if pieces:
        blocks.append(Block("text", pieces, citations=citations))
    return blocks, thinking + reply.count_tokens("".join(pieces)), thinking, stop_reason, stop_sequence
