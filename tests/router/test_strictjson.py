"""The strict parser: one case per trick two JSON readers could read differently."""

from __future__ import annotations

import pytest

from mcpfleet.router import strictjson

REFUSED = {
    "invalid UTF-8": b'{"a":"\xff"}',
    "overlong UTF-8 slash": b'{"a":"\xc0\xaf"}',
    "UTF-8 byte-order mark": b'\xef\xbb\xbf{"a":1}',
    "UTF-16 text": '{"a":1}'.encode("utf-16"),
    "not JSON": b"hello",
    "empty body": b"",
    "single quotes": b"{'a':1}",
    "trailing comma": b'{"a":1,}',
    "duplicate key": b'{"a":1,"a":2}',
    "duplicate key nested": b'{"p":{"name":"x","name":"y"}}',
    "duplicate key in array": b'{"l":[{"k":1,"k":1}]}',
    "duplicate key by escape": b'{"method":"a","\\u006dethod":"b"}',
    "duplicate key by escaped slash": b'{"a/b":1,"a\\/b":2}',
    "NaN": b'{"a":NaN}',
    "Infinity": b'{"a":Infinity}',
    "-Infinity": b'{"a":-Infinity}',
    "overflowing float": b'{"a":1e400}',
    "overflowing negative float": b'{"a":-1e400}',
    "integer beyond the digit limit": b'{"a":' + b"9" * 4301 + b"}",
    "lone high surrogate": b'{"a":"\\ud800"}',
    "lone low surrogate": b'{"a":"\\udc00"}',
    "lone surrogate in a key": b'{"\\ud800":1}',
    "reversed surrogate pair": b'{"a":"\\ude00\\ud83d"}',
    "trailing data": b'{"a":1}{"b":2}',
    "trailing garbage": b'{"a":1} x',
    "raw control character": b'{"a":"\x01"}',
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "leading zero": b'{"a":01}',
    "hex number": b'{"a":0x10}',
    "comment": b'{"a":1 /* c */}',
}


@pytest.mark.parametrize("data", REFUSED.values(), ids=list(REFUSED))
def test_refused(data: bytes) -> None:
    with pytest.raises(strictjson.NotStrictJson):
        strictjson.parse(data)


def test_canonical_form_is_what_any_reader_reads() -> None:
    value, canonical = strictjson.parse(
        b' { "method" : "tools\\/call", "\\u006eame": "\\u00e9\\ud83d\\ude00", "n": 1.0E2, "big": '
        + b"1" * 40
        + b" } "
    )
    assert value == {"method": "tools/call", "name": "é😀", "n": 100.0, "big": int("1" * 40)}
    assert canonical == ('{"method":"tools/call","name":"é😀","n":100.0,"big":' + "1" * 40 + "}").encode()


def test_limits_hold_whatever_the_interpreter_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "get_int_max_str_digits", lambda: 0)
    sys.set_int_max_str_digits(0)
    try:
        with pytest.raises(strictjson.NotStrictJson):
            strictjson.parse(b"1" * 5000)
    finally:
        sys.set_int_max_str_digits(4300)


def test_largest_finite_numbers_pass() -> None:
    value, canonical = strictjson.parse(b"[1.7976931348623157e308, -0, " + b"9" * 4300 + b"]")
    assert value[0] == 1.7976931348623157e308
    assert canonical.startswith(b"[1.7976931348623157e+308,0,")
