"""`python -m mcpfleet.router --config router.json --jwt-key issuer.pem --session-keys keys ...`.

`--config` names router.json or the directory holding it with the server files it names (a fleet too large
for one ConfigMap, docs/router.md); either is read once, at start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mcpfleet.errors import InputProblem, InvalidInput, display_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mcpfleet.router",
        description="The MCP router: strict parse, per-tool access, sessions.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        required=True,
        help="router.json, or its directory (router.json and the server files it names; docs/router.md).",
    )
    parser.add_argument("--jwt-key", type=Path, required=True, help="The token issuer's public key (PEM).")
    parser.add_argument(
        "--session-keys",
        type=Path,
        required=True,
        help="One base64 32-byte key per line; the first seals. Re-read when it changes.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default: %(default)s).")
    parser.add_argument("--port", type=int, default=8090, help="MCP port (default: %(default)s).")
    parser.add_argument("--metrics-port", type=int, default=8091, help="/metrics and /healthz port.")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help=(
            "A Host the fleet endpoint accepts besides the public domain and loopback names (any port);"
            " repeat for more. For a gateway reached at another address (tests, local runs)."
        ),
    )
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    for option in ("port", "metrics_port"):
        if not 0 < getattr(args, option) < 65536:
            parser.error(f"--{option.replace('_', '-')} must be between 1 and 65535")
    if args.port == args.metrics_port:
        parser.error("--port and --metrics-port must differ")

    from mcpfleet.router.app import Router
    from mcpfleet.router.config import load_config, load_jwt_key, load_session_keys
    from mcpfleet.router.keyfile import KeyFile
    from mcpfleet.router.observe import write_to
    from mcpfleet.router.serve import serve
    from mcpfleet.router.sessions import Sealer
    from mcpfleet.router.tokens import TokenVerifier

    try:
        config = load_config(args.config)
        key = load_jwt_key(args.jwt_key)
        keys = load_session_keys(args.session_keys)
        try:
            verifier = TokenVerifier(config.auth, key)
        except ValueError as error:
            raise InvalidInput([InputProblem(display_path(args.jwt_key), None, None, str(error))]) from None
    except InvalidInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # Audit lines go to stdout with one write() each; everything else the router says goes to stderr.
    sealer = Sealer(keys)
    # The key file is watched: a rotated Secret is picked up without a restart.
    key_file = KeyFile(args.session_keys, sealer)
    router = Router(
        config,
        verifier,
        sealer,
        audit=write_to(sys.stdout.fileno()),
        key_file=key_file,
        allowed_hosts=tuple(args.allowed_host),
    )
    try:
        serve(router, args.host, args.port, args.metrics_port, args.log_level)
    except OSError as error:
        print(f"error: cannot listen on {args.host}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
