"""The SSE decoder follows the spec: CRLF, LF and CR line endings, comments, multi-line data, split reads."""

from __future__ import annotations

from crossroads.providers.sse import Event, SSEDecoder


def decode(*chunks: bytes) -> list[Event]:
    decoder = SSEDecoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


def test_lf_crlf_and_cr_line_endings() -> None:
    for sep in (b"\n", b"\r\n", b"\r"):
        assert decode(b"data: a" + sep + sep + b"data: b" + sep + sep) == [(None, b"a"), (None, b"b")]


def test_comments_and_event_names() -> None:
    events = decode(b": OPENROUTER PROCESSING\n\nevent: message_start\ndata: {}\n\n")
    assert events == [("message_start", b"{}")]


def test_multi_line_data_joined_with_lf() -> None:
    assert decode(b"data: one\ndata: two\n\n") == [(None, b"one\ntwo")]


def test_events_split_across_reads_anywhere() -> None:
    stream = b'data: {"a": 1}\r\n\r\ndata: {"b": 2}\r\n\r\n'
    for cut in range(1, len(stream)):
        assert decode(stream[:cut], stream[cut:]) == [(None, b'{"a": 1}'), (None, b'{"b": 2}')]


def test_unicode_line_separators_inside_json_are_not_line_breaks() -> None:
    payload = '{"text": "a\u2028b\u2029c"}'.encode()
    assert decode(b"data: " + payload + b"\n\n") == [(None, payload)]


def test_unterminated_final_event_is_flushed() -> None:
    assert decode(b"data: [DONE]") == [(None, b"[DONE]")]


def test_data_without_space() -> None:
    assert decode(b"data:x\n\n") == [(None, b"x")]
