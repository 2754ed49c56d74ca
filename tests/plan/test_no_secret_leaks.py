"""No secret value reaches the plan's files, resources.json, the terminal or the logs.

The whole program runs with real-looking values in its config (as `pulumi up` would after decrypting the
stack's `secure:` entries) and every place a value could surface is searched for them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from components.program import PROJECT, fleet_program
from mcpfleet.plan.engine import run_program
from mcpfleet.plan.render import manifest_files, render_manifests, render_resources
from mcpfleet.plan.run import load_inputs
from tests.conftest import minimal_server
from tests.sample import copy_sample, sample_catalog

REPO = Path(__file__).resolve().parents[2]
SENTINEL = "sentinel-Zq8w1-do-not-print"


@sample_catalog
def test_secret_values_never_leave_the_secret(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The sample's servers, whichever read secrets, and one of the test's own that surely does.
    reader = minimal_server("secret-reader", secrets=[{"key": "tests/secret-reader/token", "env": "TOKEN"}])
    catalog = copy_sample(tmp_path / "catalog", **{"secret-reader": reader})
    config, fleet = load_inputs("local", catalog, REPO / "stacks")
    keys = sorted({ref.key for server in fleet.servers for ref in server.spec.secrets})
    assert "tests/secret-reader/token" in keys
    config = {
        **config,
        f"{PROJECT}:catalogDir": str(catalog),
        f"{PROJECT}:secrets": {key: f"{SENTINEL}-{index}" for index, key in enumerate(keys)},
        f"{PROJECT}:grafanaAdminPassword": SENTINEL,
        f"{PROJECT}:routerSessionKeys": f"{SENTINEL}-router",
    }
    caplog.set_level(logging.DEBUG)
    registrations = run_program(fleet_program, project=PROJECT, stack="local", config=config)

    outputs = [render_resources(registrations)]
    outputs += [render_manifests(documents) for documents in manifest_files(registrations).values()]
    captured = capsys.readouterr()
    for text in [*outputs, captured.out, captured.err, caplog.text]:
        assert SENTINEL not in text
    secrets = [r.inputs for r in registrations if r.inputs.get("kind") == "Secret"]
    # + Grafana's, + the MCP router's session keys
    assert len(secrets) == len({s.name for s in fleet.servers if s.spec.secrets}) + 2
    for secret in secrets:
        assert set(secret["stringData"].values()) <= {"[secret]", "admin"}
    [router] = [s for s in secrets if s["metadata"]["name"] == "mcp-router-session-keys"]
    assert router["stringData"] == {"keys": "[secret]"}
