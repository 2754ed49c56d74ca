"""A server on the mcp SDK with the tools the conformance suite's tool scenarios call, so those scenarios
test real answers (server-everything lacks the tools and passes them only through unknown-tool errors).

Run: `python -m tests.e2e.conformance_server --port N` (binds 127.0.0.1, where the SDK turns on its
DNS-rebinding protection: foreign Host headers get 421).
"""

from __future__ import annotations

import argparse

from mcp.server import MCPServer

SIMPLE_TEXT = "This is a simple text response for testing."
ERROR_TEXT = "This tool intentionally returns an error for testing"

server = MCPServer("conformance-target")


@server.tool()
def test_simple_text() -> str:
    """Returns a fixed line of text (conformance scenario tools-call-simple-text)."""
    return SIMPLE_TEXT


@server.tool()
def test_error_handling() -> str:
    """Always fails, so the result carries isError (conformance scenario tools-call-error)."""
    raise RuntimeError(ERROR_TEXT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server.run("streamable-http", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
