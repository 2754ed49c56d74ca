"""The reference servers' tools, in-process: what each tool answers, and the errors it gives."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from examples.servers.common import Metrics, parse_args, transport_security
from examples.servers.notes.server import Notebooks
from examples.servers.notes.server import build as build_notes
from examples.servers.text.server import build as build_text
from examples.servers.text.server import change, count, slug
from examples.servers.units.server import build as build_units
from examples.servers.units.server import convert_value, evaluate


def call(server: Any, tool: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """(is_error, structured result or text) of one tools/call, over the SDK's in-process client."""

    async def run() -> tuple[bool, Any]:
        async with Client(server) as client:
            result = await client.call_tool(tool, arguments)
            if result.is_error:
                return True, result.content[0].text  # type: ignore[union-attr]
            structured = result.structured_content or {}
            return False, structured.get("result", structured)

    return anyio.run(run)


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (1, "km", "m", 1000),
        (1, "mi", "km", 1.609344),
        (100, "C", "F", 212),
        (32, "F", "K", 273.15),
        (1, "GiB", "MiB", 1024),
        (8, "bit", "B", 1),
        (1, "gal", "l", 3.785411784),
        (2.5, "h", "min", 150),
    ],
)
def test_convert(value: float, source: str, target: str, expected: float) -> None:
    assert convert_value(value, source, target) == pytest.approx(expected)


def test_convert_refuses_unknown_units_and_mixed_dimensions() -> None:
    with pytest.raises(ToolError, match="unknown unit 'parsec'"):
        convert_value(1, "parsec", "m")
    with pytest.raises(ToolError, match=r"cannot convert length \(m\) to mass \(kg\)"):
        convert_value(1, "m", "kg")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("2 * (3 + 4) ** 2", 98), ("sqrt(16) + abs(-2)", 6), ("7 // 2 + 7 % 2", 4), ("-pi + pi", 0)],
)
def test_calculate(expression: str, expected: float) -> None:
    assert evaluate(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "too large"),
        ("__import__('os')", "unsupported syntax"),
        ("x + 1", "unsupported syntax"),
        ("True + 1", "unsupported syntax"),
        ("2 +", "not an arithmetic expression"),
        ("1" * 501, "longer than 500"),
    ],
)
def test_calculate_refuses(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        evaluate(expression)


def test_units_tools_over_mcp() -> None:
    server = build_units()
    assert call(server, "convert", {"value": 0, "from_unit": "C", "to_unit": "K"}) == (False, 273.15)
    assert call(server, "list_units", {"dimension": "time"}) == (
        False,
        {"time": ["ms", "s", "min", "h", "d", "wk"]},
    )
    failed, text = call(server, "calculate", {"expression": "1/0"})
    assert failed and "division by zero" in text


def test_text_helpers() -> None:
    counts = count("Hello, world! It's a well-known test.\nSecond line")
    assert (counts.words, counts.lines, counts.sentences) == (8, 2, 3)
    assert count("").model_dump() == {
        "characters": 0,
        "words": 0,
        "lines": 0,
        "sentences": 0,
        "bytes_utf8": 0,
    }
    assert count("é").bytes_utf8 == 2
    assert slug("Crème Brûlée: 2 servings!", "-") == "creme-brulee-2-servings"
    assert change("parseHTTPResponse now", "snake") == "parse_httpresponse_now"
    assert change("Hello big World", "camel") == "helloBigWorld"
    assert change("hello_big world", "kebab") == "hello-big-world"


def test_text_tools_over_mcp() -> None:
    server = build_text()
    expected = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert call(server, "digest", {"text": "hello"}) == (False, expected)
    assert call(server, "digest", {"text": "hello", "algorithm": "md5"}) == (
        False,
        "5d41402abc4b2a76b9719d911017c592",
    )
    failed, text = call(server, "slugify", {"text": "!!!"})
    assert failed and "no letters or digits" in text
    drifted = build_text(drift=True)
    assert call(drifted, "digest", {"text": "hello", "encoding": "base64"}) == (
        False,
        "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
    )


def test_notes_without_a_session_say_how_to_get_one() -> None:
    # The in-process client carries no Mcp-Session-Id: the same answer a 2026-07-28 HTTP request gets.
    failed, text = call(build_notes(), "add_note", {"text": "remember"})
    assert failed and "connect with protocol 2025-11-25" in text


def test_notebooks_evict_the_least_recently_used() -> None:
    books = Notebooks(limit=2)
    first = books.of("a")
    books.of("b")
    assert books.of("a") is first  # touched: now the most recent
    books.of("c")
    assert set(books.books) == {"a", "c"}


def test_drift_changes_one_input_schema_per_server() -> None:
    async def schemas(server: Any) -> dict[str, Any]:
        return {tool.name: tool.input_schema for tool in await server.list_tools()}

    for build, tool in ((build_units, "convert"), (build_text, "digest"), (build_notes, "add_note")):
        honest, drifted = anyio.run(schemas, build()), anyio.run(schemas, build(True))
        assert honest.keys() == drifted.keys()
        assert [name for name in honest if honest[name] != drifted[name]] == [tool]


def test_command_line_defaults_and_allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_ALLOWED_HOSTS", "mcp.dev.example.com, gw:*")
    monkeypatch.setenv("PORT", "9000")
    options = parse_args("units", ["--allowed-host", "extra.example", "--replica-id", "r7"])
    assert (options.host, options.port, options.replica_id, options.drift) == ("127.0.0.1", 9000, "r7", False)
    assert options.allowed_hosts == (
        "127.0.0.1:*",
        "localhost:*",
        "[::1]:*",
        "mcp.dev.example.com",
        "gw:*",
        "extra.example",
    )
    settings = transport_security(options.allowed_hosts)
    assert settings.enable_dns_rebinding_protection
    assert "https://mcp.dev.example.com" in settings.allowed_origins


def test_bad_port_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args("units", ["--port", "70000"])
    assert exit_info.value.code == 2


def test_metrics_count_only_known_labels() -> None:
    metrics = Metrics("units", "r1", ["convert"])
    metrics.requests.labels(method="tools/list").inc()
    text = metrics.exposition().decode()
    assert 'mcp_server_info{replica="r1",server="units"} 1.0' in text
    assert 'mcp_server_tool_calls_total{outcome="ok",tool="convert"} 0.0' in text
