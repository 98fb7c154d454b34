"""Directive parsing and merging."""

from __future__ import annotations

import pytest

from crossroads.sim import Behaviour, DirectiveError
from crossroads.sim.behaviour import DIRECTIVE_KEYS, parse_directives


def test_every_key_parses() -> None:
    behaviour = Behaviour.parse(
        "latency=10;ttft=200;tps=50;tokens=12;chunk_tokens=3;status=429;retry_after=2;drop_after=4;"
        "error_after=5;malformed;hang;fail_first=2;reasoning=7;cached=9"
    )
    assert behaviour == Behaviour(
        latency=10,
        ttft=200,
        tps=50,
        tokens=12,
        chunk_tokens=3,
        status=429,
        retry_after=2,
        drop_after=4,
        error_after=5,
        malformed=True,
        hang=True,
        fail_first=2,
        reasoning=7,
        cached=9,
    )
    assert set(DIRECTIVE_KEYS) == set(behaviour.as_dict())


def test_empty_and_whitespace() -> None:
    assert Behaviour.parse("") == Behaviour()
    assert Behaviour.parse(" ; ,, ").is_default
    assert Behaviour.parse(" TTFT = 5 , tps=2.5 ") == Behaviour(ttft=5, tps=2.5)


def test_later_sources_win_per_key() -> None:
    behaviour = Behaviour.parse("tokens=5;status=503;malformed", "status=200;malformed=false", "tps=10")
    assert behaviour == Behaviour(tokens=5, status=200, tps=10)
    assert behaviour.error_status is None


def test_error_status() -> None:
    assert Behaviour.parse("status=429").error_status == 429
    assert Behaviour.parse("fail_first=2").error_status == 503
    assert Behaviour.parse("fail_first=2;status=500").error_status == 500
    assert Behaviour().error_status is None


@pytest.mark.parametrize(
    ("text", "directive"),
    [
        ("ttfb=3", "ttfb=3"),
        ("tps=0", "tps=0"),
        ("tps=fast", "tps=fast"),
        ("tokens=-1", "tokens=-1"),
        ("tokens=1.5", "tokens=1.5"),
        ("chunk_tokens=0", "chunk_tokens=0"),
        ("status=302", "status=302"),
        ("status=abc", "status=abc"),
        ("latency=-5", "latency=-5"),
        ("latency=nan", "latency=nan"),
        ("tps", "tps"),
        ("hang=maybe", "hang=maybe"),
        ("ttft=1;bogus", "bogus"),
    ],
)
def test_bad_directives_name_the_item(text: str, directive: str) -> None:
    with pytest.raises(DirectiveError) as caught:
        parse_directives(text)
    assert caught.value.directive == directive
    assert directive in str(caught.value)


def test_unknown_key_lists_known_keys() -> None:
    with pytest.raises(DirectiveError, match="known keys: latency, ttft"):
        parse_directives("ttfb=3")


def test_directives_round_trip() -> None:
    behaviour = Behaviour.parse("ttft=200;tps=12.5;status=429;malformed;hang=false")
    assert behaviour.directives() == "ttft=200;tps=12.5;status=429;malformed"
    assert Behaviour.parse(behaviour.directives()) == behaviour
    assert Behaviour().directives() == ""
