"""The `context-compression` plugin (and the `middle-out` transform): a prompt longer than an endpoint's
context is shortened by removing messages from the middle.

As OpenRouter describes it (openrouter.ai/docs/guides/features/message-transforms): the middle of a long
conversation matters least to the model, so the system and developer messages, the first message and the
last stay, and whole messages are taken out starting at the middle until the prompt fits. A tool result
goes together with the assistant message whose call it answers, so no provider sees a result without its
call. The size of a prompt is the gateway's usual estimate (`ChatRequest.prompt_tokens_estimate`, about
four characters a token), the one routing compares with an endpoint's context length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_KEPT_ROLES = ("system", "developer")


def middle_out(messages: list[dict[str, Any]], chars_of: Callable[[list[dict[str, Any]]], int],
               budget: int) -> list[dict[str, Any]] | None:
    """`messages` with middle messages removed until their characters (`chars_of`) are within `budget`;
    None when even the messages that must stay exceed it."""
    blocks: list[list[dict[str, Any]]] = []
    for message in messages:
        if message.get("role") == "tool" and blocks:
            blocks[-1].append(message)
        else:
            blocks.append([message])
    sizes = [chars_of(block) for block in blocks]
    total = sum(sizes)
    if total <= budget:
        return messages
    conversation = [i for i, block in enumerate(blocks) if block[0].get("role") not in _KEPT_ROLES]
    removable = conversation[1:-1]
    removed: set[int] = set()
    while total > budget and removable:
        index = removable.pop(len(removable) // 2)  # the middle one first, then outwards
        removed.add(index)
        total -= sizes[index]
    if total > budget:
        return None
    return [message for i, block in enumerate(blocks) if i not in removed for message in block]


__all__ = ["middle_out"]
