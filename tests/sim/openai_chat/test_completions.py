"""The simulator's legacy Completions API (`POST /v1/completions`), through the `openai` SDK."""

from __future__ import annotations

import openai
import pytest

from crossroads.sim.reply import count_tokens


async def test_a_prompt_gets_sixteen_tokens_by_default(client: openai.AsyncOpenAI) -> None:
    reply = await client.completions.create(model="base-7b", prompt="Once upon a time")
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-") and reply.model == "base-7b"
    (choice,) = reply.choices
    assert choice.text and choice.index == 0 and choice.logprobs is None
    assert reply.usage is not None and reply.usage.prompt_tokens == count_tokens("Once upon a time")
    assert reply.usage.completion_tokens <= 16
    assert choice.finish_reason == ("length" if reply.usage.completion_tokens == 16 else "stop")


async def test_prompts_times_n_choices_with_echo_and_logprobs(client: openai.AsyncOpenAI) -> None:
    reply = await client.completions.create(model="m", prompt=["First", [7, 8]], n=2, echo=True, logprobs=3,
                                            max_tokens=4)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert reply.choices[0].text.startswith("First") and reply.choices[3].text.startswith("<7><8>")
    logprobs = reply.choices[1].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.top_logprobs and logprobs.text_offset
    assert len(logprobs.tokens) == len(logprobs.token_logprobs or []) == len(logprobs.text_offset)
    assert all(len(top) <= 3 for top in logprobs.top_logprobs)
    assert "".join(logprobs.tokens) == reply.choices[1].text[len("First"):]
    assert reply.usage is not None and reply.usage.prompt_tokens == count_tokens("First") + 2


async def test_best_of_bills_every_candidate(client: openai.AsyncOpenAI) -> None:
    one = await client.completions.create(model="m", prompt="Same prompt", max_tokens=6, temperature=0)
    best = await client.completions.create(model="m", prompt="Same prompt", max_tokens=6, best_of=3)
    assert len(best.choices) == 1 and one.usage is not None and best.usage is not None
    assert best.usage.completion_tokens > one.usage.completion_tokens
    with pytest.raises(openai.BadRequestError, match="best_of"):
        await client.completions.create(model="m", prompt="x", n=3, best_of=2)


async def test_a_stream_is_text_chunks_then_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.completions.create(model="m", prompt="Stream me", max_tokens=10, stream=True,
                                             stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "text_completion" for chunk in chunks)
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) and [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == sum(count_tokens(t) for t in texts)


async def test_bad_prompts_are_refused(client: openai.AsyncOpenAI) -> None:
    for prompt in ([], [1.5], [["a"]], {"text": "x"}):
        with pytest.raises(openai.BadRequestError, match="prompt"):
            await client.completions.create(model="m", prompt=prompt)  # type: ignore[arg-type]
