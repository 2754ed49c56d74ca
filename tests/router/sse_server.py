"""A reference server over the legacy HTTP+SSE transport: `python -m tests.router.sse_server --port P`.

The `units` server's tools served by the SDK's SSE app (GET /sse announces /messages/?session_id=...),
recording each message it executes like the Streamable HTTP reference servers."""

from __future__ import annotations

import argparse

import uvicorn

from examples.servers.common import CallLog, transport_security
from examples.servers.units.server import SPEC


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--call-log", required=True)
    args = parser.parse_args()
    server = SPEC.build(False)
    server.middleware.append(CallLog(args.call_log, "units-sse"))
    app = server.sse_app(transport_security=transport_security(("127.0.0.1:*", "localhost:*")))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
