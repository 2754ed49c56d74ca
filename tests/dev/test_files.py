"""What `mcpfleet dev` writes before it starts HAProxy and the router: a configuration HAProxy accepts,
forwarding to the local router on the ports given, and a router.json and keys the router itself loads."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from components.gateway.config import ROUTER_BACKEND, Upstream
from components.manifests.gateway import METRICS_PORT, serving_port
from mcpfleet.dev import gateway, router
from mcpfleet.dev.gateway import GatewayError
from mcpfleet.fleet import Fleet
from mcpfleet.router.config import load_config, load_jwt_key, load_session_keys
from tests.conftest import minimal_server
from tests.dev.test_launch import fleet_of

ROLES = ["engineer", "support"]


@pytest.fixture
def fleet(catalog_dir: Callable[..., Path]) -> Fleet:
    access = [{"roles": ROLES, "tools": ["*"]}]
    tools = [{"name": "echo", "description": "Echo."}]
    return fleet_of(
        catalog_dir(
            alpha=minimal_server("alpha", tools=tools, access=access),
            beta=minimal_server("beta", tools=tools, access=access),
        )
    )


def haproxy() -> str:
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.fail("haproxy is not installed: `apt-get install -y haproxy` (HAProxy 2.6 on Debian bookworm)")
    return binary


def test_haproxy_forwards_to_the_local_router_on_the_ports_given(fleet: Fleet, tmp_path: Path) -> None:
    routers = [Upstream("127.0.0.1:41001", 41002)]
    files = gateway.prepare(fleet, routers, 41000, tmp_path, {"PATH": "/usr/bin"}, metrics_port=41003)
    text = files.config.read_text()
    assert 'bind "${MCP_GATEWAY_ADDRESS-}:41000"' in text
    assert 'bind "${MCP_GATEWAY_ADDRESS-}:41003"' in text
    assert f':{serving_port(fleet.settings)}"' not in text and f':{METRICS_PORT}"' not in text
    backend = text[text.index(f"backend {ROUTER_BACKEND}") :]
    assert "server router1 127.0.0.1:41001 check port 41002" in backend
    # No server is reached but through the router, and nothing resolves cluster names here.
    assert "resolvers" not in text
    assert files.env["MCP_GATEWAY_ADDRESS"] == "127.0.0.1"
    check = subprocess.run(
        [haproxy(), "-c", "-f", str(files.config)], env=files.env, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_tokens_carry_each_servers_audience_and_roles(fleet: Fleet, tmp_path: Path) -> None:
    files = gateway.prepare(fleet, ["127.0.0.1:41001"], 41000, tmp_path, {})
    tokens = json.loads(files.tokens.read_text())
    key = files.issuer_key.read_bytes()
    auth = fleet.settings.gateway.auth
    for name in ("alpha", "beta"):
        claims = jwt.decode(
            tokens[name], key, algorithms=[auth.algorithm], audience=fleet.audience(name), issuer=auth.issuer
        )
        assert claims[auth.roles_claim] == " ".join(ROLES)
    assert files.tokens.stat().st_mode & 0o077 == 0


def test_the_fleet_endpoint_token_has_its_own_audience_and_every_role(
    catalog_dir: Callable[..., Path], tmp_path: Path
) -> None:
    tools = [{"name": "echo", "description": "Echo."}]
    fleet = fleet_of(
        catalog_dir(
            alpha=minimal_server("alpha", tools=tools, access=[{"roles": ["engineer"], "tools": ["*"]}]),
            beta=minimal_server(
                "beta", tools=tools, access=[{"roles": ["support", "sre"], "tools": ["echo"]}]
            ),
        )
    )
    files = gateway.prepare(fleet, ["127.0.0.1:41001"], 41000, tmp_path, {})
    tokens = json.loads(files.tokens.read_text())
    # Under its path, which no server name can be.
    assert sorted(tokens) == ["/mcp", "alpha", "beta"]
    key = files.issuer_key.read_bytes()
    auth = fleet.settings.gateway.auth
    claims = jwt.decode(
        tokens["/mcp"], key, algorithms=[auth.algorithm], audience=fleet.endpoint_audience, issuer=auth.issuer
    )
    assert fleet.endpoint_audience == f"https://{fleet.settings.domain}/mcp"
    assert claims[auth.roles_claim] == "engineer sre support"
    # It opens no server's route, and no server's token opens the fleet endpoint.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(tokens["/mcp"], key, algorithms=[auth.algorithm], audience=fleet.audience("alpha"))
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(tokens["alpha"], key, algorithms=[auth.algorithm], audience=fleet.endpoint_audience)


def test_a_configuration_of_another_shape_is_refused(fleet: Fleet) -> None:
    mcp = f'    bind "${{MCP_GATEWAY_ADDRESS-}}:{serving_port(fleet.settings)}"\n'
    assert gateway.listen_on(mcp, fleet, 41000) == '    bind "${MCP_GATEWAY_ADDRESS-}:41000"\n'
    with pytest.raises(GatewayError, match=f"0 listeners on port {METRICS_PORT} .* its metrics listener"):
        gateway.listen_on(mcp, fleet, 41000, 41003)
    with pytest.raises(GatewayError, match="2 listeners"):
        gateway.listen_on(mcp * 2, fleet, 41000)


def test_the_router_gets_the_started_servers_the_issuer_and_a_fresh_key(fleet: Fleet, tmp_path: Path) -> None:
    issuer = gateway.prepare(fleet, ["127.0.0.1:41001"], 41000, tmp_path, {}).issuer_key
    first = router.prepare(fleet, {"alpha": ["127.0.0.1:42000"]}, issuer, tmp_path, 41001, 41002, "py")
    # What the router itself loads, strictly: only the server started here, at its address.
    config = load_config(first.config)
    assert sorted(config.servers) == ["alpha"]
    upstream = config.servers["alpha"].upstream
    assert upstream.addresses == ["127.0.0.1:42000"] and upstream.host is None and upstream.path == "/mcp"
    assert config.auth.issuer == fleet.settings.gateway.auth.issuer
    assert load_jwt_key(issuer) == issuer.read_bytes()
    keys = load_session_keys(first.session_keys)
    assert len(keys) == 1
    assert first.session_keys.stat().st_mode & 0o077 == 0
    assert first.argv == [
        "py",
        "-m",
        "mcpfleet.router",
        "--config",
        str(first.config),
        "--jwt-key",
        str(issuer),
        "--session-keys",
        str(first.session_keys),
        "--host",
        "127.0.0.1",
        "--port",
        "41001",
        "--metrics-port",
        "41002",
    ]
    # Each run seals sessions with a key of its own.
    second = router.prepare(fleet, {"alpha": ["127.0.0.1:42000"]}, issuer, tmp_path, 41001, 41002)
    assert load_session_keys(second.session_keys) != keys


def test_the_router_ports_must_differ(fleet: Fleet, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must differ"):
        router.prepare(fleet, {}, tmp_path / "issuer.pem", tmp_path, 41001, 41001)
